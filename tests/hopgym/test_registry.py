"""hopgym.registry: the one registry shape (protocols, rewards, index backends) and the "module:attr" resolver."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from hopgym.errors import ConfigError
from hopgym.registry import Registry, is_ref, resolve_ref


def _callable(name: str, obj: object) -> Callable[..., object]:
    if not callable(obj):
        raise ConfigError(f"{name} must be callable")
    return obj  # type: ignore[return-value]


def test_register_get_names_keep_order_and_refuse_a_taken_name() -> None:
    reg: Registry[Callable[..., object]] = Registry("thing", _callable)
    reg.register("b", len)
    reg.register("a", "os.path:join")
    assert reg.names() == ("b", "a")
    assert reg.get("b") is len
    import os.path

    assert reg.get("a") is os.path.join
    with pytest.raises(ConfigError, match="'b' is already registered; pass replace=True"):
        reg.register("b", abs)
    reg.register("b", abs, replace=True)
    assert reg.get("b") is abs
    reg.unregister("b")
    assert "b" not in reg


def test_unknown_name_lists_the_valid_ones_and_the_register_function() -> None:
    reg: Registry[Callable[..., object]] = Registry("widget", _callable, register_hint="register_widget")
    reg.register("one", len)
    with pytest.raises(
        ConfigError, match=r"unknown widget 'two'; valid names: one \(or add yours with register_widget\)"
    ):
        reg.get("two")


def test_protected_names_and_name_rules() -> None:
    reg: Registry[Callable[..., object]] = Registry(
        "reward", _callable, protected={"em"}, name_rule=(str.isidentifier, "a Python identifier")
    )
    reg.register("em", len)
    with pytest.raises(ConfigError, match="built in"):
        reg.register("em", abs, replace=True)
    with pytest.raises(ConfigError, match="built in"):
        reg.unregister("em")
    with pytest.raises(ConfigError, match="a Python identifier"):
        reg.register("my reward", abs)
    with pytest.raises(ConfigError, match="non-empty"):
        reg.register(" em", abs)


def test_objects_are_checked_at_registration_and_references_at_first_get() -> None:
    reg: Registry[Callable[..., object]] = Registry("thing", _callable)
    with pytest.raises(ConfigError, match="must be callable"):
        reg.register("x", 3)
    reg.register("pi", "math:pi")  # not callable: found out when imported
    with pytest.raises(ConfigError, match="must be callable"):
        reg.get("pi")
    with pytest.raises(ConfigError, match=r"not a 'package\.module:attribute' reference"):
        reg.register("y", "math.pi")


@pytest.mark.parametrize(
    ("ref", "ok"),
    [
        ("a.b:c", True),
        ("a:B.c", True),
        ("a", False),
        ("a:", False),
        (":b", False),
        ("a b:c", False),
        (3, False),
    ],
)
def test_is_ref(ref: object, ok: bool) -> None:
    assert is_ref(ref) is ok


def test_resolve_ref_follows_dotted_attributes() -> None:
    from hopgym.envs.protocols.search_r1 import SearchR1Protocol

    assert (
        resolve_ref("hopgym.envs.protocols.search_r1:SearchR1Protocol.from_files")
        == SearchR1Protocol.from_files
    )


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        (
            "no_such_module_xyz:f",
            r"core factory 'no_such_module_xyz:f': module 'no_such_module_xyz' not found",
        ),
        ("hopgym.errors:nope", r"'hopgym.errors' has no attribute 'nope'"),
        ("hopgym.errors", r"must look like 'package.module:attribute'"),
    ],
)
def test_resolve_ref_errors_name_the_reference(ref: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        resolve_ref(ref, what="core factory")


def test_an_import_error_inside_the_module_is_not_hidden(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A plugin module that exists but needs a missing dependency: the user must see the dependency's name.
    (tmp_path / "plugin_needs_dep_xyz.py").write_text("import missing_dependency_xyz\nf = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        with pytest.raises(ModuleNotFoundError, match="missing_dependency_xyz"):
            resolve_ref("plugin_needs_dep_xyz:f")
    finally:
        sys.modules.pop("plugin_needs_dep_xyz", None)


def test_index_backends_are_a_registry_of_lazy_references() -> None:
    from hopgym.retrievers import manifest

    assert set(manifest.backend_names()) >= {"bm25", "dense", "elasticsearch"}
    with pytest.raises(ConfigError, match=r"unknown index backend 'lucene'; valid names: bm25"):
        manifest.BACKENDS.get("lucene")
    with pytest.raises(ConfigError, match="already registered"):
        manifest.register_backend("hopgym.retrievers.bm25.backend:BACKEND", name="bm25")
    with pytest.raises(ConfigError, match="build\\(\\) and open\\(\\)"):
        manifest.register_backend(object(), name="broken_backend_xyz")
