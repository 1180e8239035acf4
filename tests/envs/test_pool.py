"""EnvPool: one env per episode, cloned around one shared micro-batching retriever."""

from __future__ import annotations

import asyncio

import pytest

import hopgym
from hopgym.envs.core import AsyncSearchQAEnv
from hopgym.envs.pool import EnvPool
from hopgym.errors import ConfigError, RetrieverError
from hopgym.retrievers.wrappers.batching import MicroBatchingRetriever


async def _search_episode(env: AsyncSearchQAEnv, task_id: str) -> list[str]:
    await env.reset(options={"task_id": task_id})
    _, _, _, _, info = await env.step(env.protocol.render_search(env.task.question if env.task else ""))
    return info["passage_ids"]


async def test_envs_of_an_id_share_one_batching_retriever() -> None:
    batches: list[int] = []
    async with EnvPool(
        "hopgym/HopWorld-2hop-v0",
        env_kwargs={"world_seed": 3},
        retriever_batching={"on_batch": batches.append},
    ) as pool:
        ids = (await pool.task_ids())[:32]
        envs = [await pool.new_env() for _ in ids]
        assert len({id(e) for e in envs}) == 32 and {id(e.retriever) for e in envs} == {id(pool.retriever)}
        assert isinstance(pool.retriever, MicroBatchingRetriever)
        hits = await asyncio.gather(*(_search_episode(env, i) for env, i in zip(envs, ids, strict=True)))
        assert all(len(h) == 3 for h in hits)
        assert sum(batches) == 32  # every search went through the one shared wrapper
        for env in envs:
            await env.aclose()
        shared = pool.retriever
    with pytest.raises(RetrieverError, match="closed"):
        await shared.search(["x"], 1)  # the pool closed the wrapper it made


async def test_a_prototype_stays_open_and_keeps_its_retriever() -> None:
    proto = hopgym.make_async("hopgym/HopWorld-2hop-v0", world_seed=3)
    async with EnvPool(proto) as pool, pool.env() as env:
        assert env is not proto and env.retriever is pool.retriever is not proto.retriever
        assert await _search_episode(env, proto.tasks[0].id)
    async with EnvPool(proto, retriever_batching=False) as pool, pool.env() as env:
        assert env.retriever is proto.retriever
    (hits,) = await proto.retriever.search([proto.tasks[0].question], 2)  # the prototype's is still open
    assert len(hits) == 2
    batching = MicroBatchingRetriever(proto.retriever, close_inner=False)
    already = AsyncSearchQAEnv(proto.tasks, batching, proto.protocol)
    async with EnvPool(already) as pool:
        assert pool.retriever is batching  # not wrapped twice
    await batching.aclose()
    await proto.aclose()


async def test_a_factory_makes_every_env() -> None:
    proto = hopgym.make_async("hopgym/HopWorld-2hop-v0", world_seed=3)
    made: list[AsyncSearchQAEnv] = []

    async def factory() -> AsyncSearchQAEnv:
        made.append(proto.clone())
        return made[-1]

    async with EnvPool(factory) as pool:
        assert await pool.task_ids() == [t.id for t in proto.tasks]
        env = await pool.new_env()
        assert env is made[-1] and len(made) == 2 and pool.retriever is None
    async with EnvPool(lambda: "not an env") as pool:  # type: ignore[arg-type,return-value]
        with pytest.raises(ConfigError, match="returned str, not an AsyncSearchQAEnv"):
            await pool.new_env()
    await proto.aclose()


def test_bad_arguments_name_the_fix() -> None:
    proto = hopgym.make_async("hopgym/HopWorld-2hop-v0", world_seed=3)
    with pytest.raises(ConfigError, match="env_kwargs apply to an env id"):
        EnvPool(proto, env_kwargs={"world_seed": 1})
    with pytest.raises(ConfigError, match="registered env id, an AsyncSearchQAEnv or a factory"):
        EnvPool(42)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="retriever_batching"):
        EnvPool(proto, retriever_batching="yes")  # type: ignore[arg-type]
