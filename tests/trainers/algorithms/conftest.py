"""OpenRLHF 0.11.2's own math functions, loaded on CPU, for the comparison tests.

OpenRLHF cannot be imported the normal way without CUDA: the package ``__init__``s of ``openrlhf.models``,
``openrlhf.utils`` and ``openrlhf.trainer`` import flash-attn, deepspeed, ray and transformers. The files
that hold the math import little of that, so this loads exactly those files with
``importlib.util.spec_from_file_location`` and puts stand-ins under the few names they import at module level
but never use in the functions under test (``ray``, ``deepspeed``, the Ray launcher, the Experience class,
sequence-length balancing). ``torch.compile`` is an identity while ``models/utils.py`` loads, so its
``compute_entropy`` runs eagerly (same formula, no C compiler needed). The stand-ins are removed from
``sys.modules`` again once the files are loaded.

Install: ``pip install --no-deps openrlhf==0.11.2 pylatexenc`` (install.sh does). Without it the comparison
tests skip, unless ``HOPGYM_REQUIRE_OPENRLHF=1`` (CI), which turns the skip into a failure.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest
import torch

OPENRLHF_VERSION = "0.11.2"
REQUIRE_ENV = "HOPGYM_REQUIRE_OPENRLHF"
INSTALL_HINT = f".venv/bin/pip install --no-deps openrlhf=={OPENRLHF_VERSION} pylatexenc"

# Packages whose real __init__ imports CUDA-only or heavy modules: empty packages stand in for them.
_PACKAGES = ("openrlhf", "openrlhf.models", "openrlhf.utils", "openrlhf.trainer", "openrlhf.trainer.ppo_utils",
             "openrlhf.trainer.ray")  # fmt: skip
# Real module files, in dependency order.
_FILES = {
    "openrlhf.utils.logging_utils": "utils/logging_utils.py",
    "openrlhf.models.utils": "models/utils.py",
    "openrlhf.models.loss": "models/loss.py",
    "openrlhf.trainer.ppo_utils.length_penalty": "trainer/ppo_utils/length_penalty.py",
    "openrlhf.trainer.ppo_utils.experience_maker": "trainer/ppo_utils/experience_maker.py",
}


def _stand_in(name: str, **attrs: Any) -> ModuleType:
    module = ModuleType(name)
    module.__dict__.update(attrs)
    return module


def _unused(*args: Any, **kwargs: Any) -> Any:
    raise AssertionError("a stand-in for a module the tested OpenRLHF functions do not use was called")


@contextmanager
def _temporary_modules(modules: dict[str, ModuleType]) -> Iterator[None]:
    saved = {name: sys.modules[name] for name in modules if name in sys.modules}
    sys.modules.update(modules)
    try:
        yield
    finally:
        for name in modules:
            if name in saved:
                sys.modules[name] = saved[name]
            else:
                sys.modules.pop(name, None)


def load_openrlhf() -> SimpleNamespace:
    """OpenRLHF 0.11.2's math (raises ImportError with the reason when it is not installed)."""
    try:
        version = importlib.metadata.version("openrlhf")
    except importlib.metadata.PackageNotFoundError as exc:
        raise ImportError(f"openrlhf is not installed: {INSTALL_HINT}") from exc
    if version != OPENRLHF_VERSION:
        raise ImportError(
            f"openrlhf {version} is installed, the comparison is with {OPENRLHF_VERSION}: {INSTALL_HINT}"
        )
    spec = importlib.util.find_spec("openrlhf")
    assert spec is not None and spec.submodule_search_locations is not None
    root = Path(next(iter(spec.submodule_search_locations)))

    modules: dict[str, ModuleType] = {}
    for package in _PACKAGES:
        modules[package] = _stand_in(package, __path__=[str(root.joinpath(*package.split(".")[1:]))])
    modules["ray"] = _stand_in("ray", get=_unused, put=_unused)
    modules["deepspeed"] = _stand_in("deepspeed", utils=SimpleNamespace(set_z3_leaf_modules=_unused))
    modules["openrlhf.trainer.ray.launcher"] = _stand_in("launcher", RayActorGroup=object)
    modules["openrlhf.trainer.ppo_utils.experience"] = _stand_in("experience", Experience=object)
    modules["openrlhf.utils.seqlen_balancing"] = _stand_in(
        "seqlen_balancing", get_minimum_num_micro_batch_size=_unused, get_seqlen_balanced_partitions=_unused
    )

    loaded: dict[str, ModuleType] = {}
    real_compile = torch.compile
    with _temporary_modules(modules):
        torch.compile = lambda fn=None, **kwargs: fn  # type: ignore[assignment]
        try:
            for name, relative in _FILES.items():
                file_spec = importlib.util.spec_from_file_location(name, root / relative)
                assert file_spec is not None and file_spec.loader is not None
                module = importlib.util.module_from_spec(file_spec)
                sys.modules[name] = module  # relative imports of the later files find it here
                modules[name] = module  # ... and _temporary_modules removes it afterwards
                file_spec.loader.exec_module(module)
                loaded[name] = module
        finally:
            torch.compile = real_compile

    utils = loaded["openrlhf.models.utils"]
    loss = loaded["openrlhf.models.loss"]
    maker = loaded["openrlhf.trainer.ppo_utils.experience_maker"]
    return SimpleNamespace(
        root=root,
        compute_approx_kl=utils.compute_approx_kl,
        compute_reward=utils.compute_reward,
        compute_entropy=utils.compute_entropy,
        masked_mean=utils.masked_mean,
        PolicyLoss=loss.PolicyLoss,
        aggregate_loss=loss.aggregate_loss,
        RemoteExperienceMaker=maker.RemoteExperienceMaker,
    )


@pytest.fixture(scope="session")
def openrlhf() -> SimpleNamespace:
    """OpenRLHF's functions; skips (fails with HOPGYM_REQUIRE_OPENRLHF=1) when they cannot be loaded."""
    try:
        return load_openrlhf()
    except ImportError as exc:
        if os.environ.get(REQUIRE_ENV) == "1":
            pytest.fail(f"{REQUIRE_ENV}=1 but OpenRLHF cannot be loaded: {exc}")
        pytest.skip(f"OpenRLHF comparison: {exc}")
