"""Registry: every registered id passes Gymnasium's check_env; make/make_async agree; plugins register."""

from __future__ import annotations

import sys
import textwrap
import warnings
from pathlib import Path
from typing import Any

import gymnasium
import pytest
from gymnasium.utils.env_checker import check_env

import hopgym
from hopgym.envs import AsyncSearchQAEnv, SearchQAEnv, hopgym_env_ids, registration
from hopgym.retrievers.bm25.simple import InMemoryBM25Retriever
from hopgym.types import Passage, Task

BUILTIN_IDS = {
    "hopgym/HopWorld-v0",
    "hopgym/HopWorld-2hop-v0",
    "hopgym/HopWorld-3hop-v0",
    "hopgym/HopWorld-4hop-v0",
    "hopgym/SearchQA-v0",
}
SMALL_TASKS = [Task("q1", "Who wrote Lunar Tides?", ("Ada Crane",)), Task("q2", "Where is Brill?", ("Osk",))]
SMALL_PASSAGES = [Passage("d1", "Lunar Tides", "Lunar Tides was written by Ada Crane."),
                  Passage("d2", "Brill", "Brill is a town in Osk.")]  # fmt: skip


def make_kwargs(env_id: str) -> dict[str, Any]:
    """Live objects an id needs at make time (registered kwargs stay JSON-able)."""
    if env_id == "hopgym/SearchQA-v0":
        return {"tasks": SMALL_TASKS, "retriever": InMemoryBM25Retriever(SMALL_PASSAGES)}
    return {}


def test_builtin_ids_are_registered() -> None:
    assert set(hopgym_env_ids()) >= BUILTIN_IDS


def test_registered_kwargs_are_json_able() -> None:
    for env_id in hopgym_env_ids():
        spec = gymnasium.spec(env_id)
        spec.to_json()  # raises if any kwarg cannot be serialised


@pytest.mark.parametrize("env_id", sorted(BUILTIN_IDS))
def test_check_env_passes_without_warnings(env_id: str) -> None:
    env = hopgym.make(env_id, **make_kwargs(env_id))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            check_env(env.unwrapped)
    finally:
        env.close()


def test_gymnasium_make_returns_the_facade() -> None:
    env = gymnasium.make("hopgym/HopWorld-2hop-v0")
    try:
        assert isinstance(env.unwrapped, SearchQAEnv)
        obs, info = env.reset(seed=3)
        assert isinstance(obs, str) and info["question"] in obs
    finally:
        env.close()
        env.close()  # idempotent


async def test_make_async_matches_make() -> None:
    sync_env = hopgym.make("hopgym/HopWorld-3hop-v0", world_seed=5)
    async_env = hopgym.make_async("hopgym/HopWorld-3hop-v0", world_seed=5)
    try:
        assert isinstance(async_env, AsyncSearchQAEnv)
        sync_obs, sync_info = sync_env.reset(seed=11)
        async_obs, async_info = await async_env.reset(seed=11)
        assert (sync_obs, sync_info["task_id"]) == (async_obs, async_info["task_id"])
    finally:
        sync_env.close()
        await async_env.aclose()


def test_search_qa_needs_tasks_and_retriever() -> None:
    with pytest.raises(hopgym.ConfigError, match="needs tasks="):
        hopgym.make("hopgym/SearchQA-v0")


def test_sync_facade_steps_from_inside_a_running_loop() -> None:
    import asyncio

    async def inside() -> float:
        env = hopgym.make("hopgym/SearchQA-v0", **make_kwargs("hopgym/SearchQA-v0"))
        try:
            env.reset(options={"task_id": "q1"})
            env.step("<search>Lunar Tides author</search>")
            _, reward, terminated, _, _ = env.step("<answer>Ada Crane</answer>")
            assert terminated
            return float(reward)
        finally:
            env.close()

    assert asyncio.run(inside()) == 1.0


def test_plugin_entry_point_registers_an_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pkg = tmp_path / "acme_qa_plugin"
    pkg.mkdir()
    (pkg / "__init__.py").write_text(
        textwrap.dedent("""
        from hopgym.envs import AsyncSearchQAEnv, register_env
        from hopgym.retrievers.bm25.simple import InMemoryBM25Retriever
        from hopgym.types import Passage, Task

        def make_core(*, greeting="hi", **kwargs):
            tasks = [Task("a1", greeting + ": who built Kest Tower?", ("Oda Fenn",))]
            passages = [Passage("k1", "Kest Tower", "Kest Tower was built by Oda Fenn.")]
            return AsyncSearchQAEnv(tasks, InMemoryBM25Retriever(passages), close_retriever=True, **kwargs)

        def register():
            register_env("acme/KestQA-v0", "acme_qa_plugin:make_core", {"greeting": "hello"})
    """)
    )
    dist = tmp_path / "acme_qa_plugin-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-qa-plugin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[hopgym.envs]\nacme = acme_qa_plugin:register\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(registration, "_plugins_loaded", False)
    try:
        assert "acme/KestQA-v0" in hopgym_env_ids()
        env = hopgym.make("acme/KestQA-v0")
        obs, _ = env.reset(seed=0)
        assert obs.count("hello: who built Kest Tower?") == 1
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            check_env(env.unwrapped)
        env.close()
    finally:
        gymnasium.registry.pop("acme/KestQA-v0", None)
        sys.modules.pop("acme_qa_plugin", None)


def test_broken_plugin_is_logged_not_fatal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    dist = tmp_path / "broken_plugin-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-plugin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[hopgym.envs]\nbroken = no_such_module_xyz:register\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(registration, "_plugins_loaded", False)
    registration.load_plugins()
    assert "broken" in caplog.text and "no_such_module_xyz" in caplog.text


async def test_hopworld_passes_every_env_config_field_to_the_env() -> None:
    # The env's keywords are derived from EnvConfig and AsyncSearchQAEnv, not a hand-kept list in builtin.py.
    import dataclasses

    from hopgym.envs import EnvConfig
    from hopgym.envs.builtin import env_keywords

    assert {f.name for f in dataclasses.fields(EnvConfig)} | {
        "protocol",
        "reward",
        "count_tokens",
    } <= env_keywords()
    env = hopgym.make_async(
        "hopgym/HopWorld-2hop-v0", max_turns=3, top_k=2, max_observation_chars=900, protocol="research"
    )
    try:
        assert (env.config.max_turns, env.config.top_k, env.config.max_observation_chars) == (3, 2, 900)
        assert env.protocol.name == "research"
    finally:
        await env.aclose()
