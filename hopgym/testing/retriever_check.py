"""``check_retriever``: the retriever conformance suite, for plugin authors as Gymnasium's ``check_env``.

Every hopgym backend passes these checks (tests/retrievers/test_conformance.py runs them on each); a plugin
backend that passes them works wherever hopgym takes a :class:`~hopgym.retrievers.base.Retriever`::

    from hopgym.testing import check_retriever

    check_retriever(lambda passages: MyRetriever(passages))   # or an async context manager factory

The checks need a corpus whose every passage the retriever searches. By default it is 300 passages of a
generated HopWorld (no download); pass ``passages`` to use your own (at least 50, unique ids). A failed
check raises :class:`RetrieverCheckError` listing every check that failed and why.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any

from hopgym.errors import ConfigError
from hopgym.types import Passage

__all__ = [
    "MIN_CHECK_PASSAGES",
    "ODD_QUERIES",
    "RETRIEVER_CHECKS",
    "RetrieverCheckError",
    "acheck_retriever",
    "check_aclose_is_idempotent",
    "check_batch_order_preserved",
    "check_blank_query_gives_empty_list",
    "check_concurrent_calls_match_sequential",
    "check_duplicate_queries_in_one_batch",
    "check_empty_batch",
    "check_finds_passage_by_its_own_text",
    "check_k_below_one_is_a_config_error",
    "check_k_is_respected",
    "check_k_larger_than_corpus",
    "check_odd_queries_never_raise",
    "check_passage_fields_round_trip",
    "check_result_types_and_shape",
    "check_retriever",
    "conformance_passages",
]

#: The checks index passages up to #46 and compare hits with the corpus.
MIN_CHECK_PASSAGES = 50

#: Queries a retriever must answer without raising: syntax of query languages, scripts, emoji, control
#: whitespace, a very long query.
ODD_QUERIES = (
    "?!",
    "Zürich Ångström naïve café",
    "東京 の 人口",
    "emoji 🙂 test",
    'title:(foo) AND "bar OR baz~ ^2 {x} [y] \\ /',
    "a " * 400,
    "\t\n tabs and\nnewlines ",
    "0123456789",
)

Factory = Callable[[Sequence[Passage]], Any]


class RetrieverCheckError(AssertionError):
    """A retriever broke the contract. ``failures`` maps each failed check's name to what went wrong."""

    def __init__(self, failures: Mapping[str, str]) -> None:
        self.failures = dict(failures)
        lines = "\n".join(f"- {name}: {why}" for name, why in self.failures.items())
        super().__init__(f"{len(self.failures)} retriever check(s) failed:\n{lines}")


def _expect(condition: bool, message: str) -> None:
    # Not `assert`: these checks must also run under `python -O`.
    if not condition:
        raise AssertionError(message)


def _ids(hits: Sequence[Passage]) -> list[str]:
    return [p.id for p in hits]


def conformance_passages(n: int | None = 300, *, seed: int = 0) -> list[Passage]:
    """The first ``n`` passages (all with None) of a generated HopWorld: made-up entities and facts, stable
    for a seed."""
    from hopgym.envs.hopworld import HopWorldConfig, generate_world

    passages = list(generate_world(HopWorldConfig(seed=seed)).passages)
    if n is None:
        return passages
    if n > len(passages):
        raise ConfigError(f"n={n} is more than the {len(passages)} passages of the default HopWorld")
    return passages[:n]


# -- the checks: each takes a retriever over exactly `passages` ---------------------------------------


async def check_result_types_and_shape(retriever: Any, passages: Sequence[Passage]) -> None:
    """One list of at most k Passages per query, ids from the corpus, float scores ranked best first."""
    queries = [passages[0].title, passages[5].title, " ".join(passages[7].text.split()[:3])]
    results = await retriever.search(queries, 3)
    _expect(isinstance(results, list) and len(results) == len(queries), "one result list per query")
    corpus_ids = {p.id for p in passages}
    for hits in results:
        _expect(isinstance(hits, list), f"each result is a list, got {type(hits).__name__}")
        _expect(1 <= len(hits) <= 3, f"between 1 and k=3 hits for a query naming a passage, got {len(hits)}")
        for p in hits:
            _expect(isinstance(p, Passage), f"hits are Passages, got {type(p).__name__}")
            _expect(p.id in corpus_ids, f"hit id {p.id!r} is not in the corpus")
            _expect(isinstance(p.score, float), f"scores are floats, got {type(p.score).__name__}")
        scores = [p.score for p in hits]
        _expect(scores == sorted(scores, reverse=True), "hits must be ranked best first")
        _expect(len(set(_ids(hits))) == len(hits), "no duplicate passages in one result")


async def check_finds_passage_by_its_own_text(retriever: Any, passages: Sequence[Passage]) -> None:
    """A query made of a passage's title and first words finds that passage in the top 3."""
    targets = passages[10:15]
    queries = [f"{p.title} {' '.join(p.text.split()[:12])}" for p in targets]
    results = await retriever.search(queries, 3)
    for target, hits in zip(targets, results, strict=True):
        _expect(target.id in _ids(hits), f"{target.id} ({target.title}) not in top 3: {_ids(hits)}")


async def check_passage_fields_round_trip(retriever: Any, passages: Sequence[Passage]) -> None:
    """Hits carry the corpus's title and text unchanged."""
    by_id = {p.id: p for p in passages}
    (hits,) = await retriever.search([passages[3].title], 5)
    for p in hits:
        _expect(
            (p.title, p.text) == (by_id[p.id].title, by_id[p.id].text),
            f"passage {p.id!r} came back as {(p.title, p.text)!r:.200}",
        )


async def check_k_is_respected(
    retriever: Any, passages: Sequence[Passage], *, ks: Iterable[int] = (1, 2, 5, 10)
) -> None:
    """At most k hits (and at least one for a query naming a passage) for each k."""
    for k in ks:
        (hits,) = await retriever.search([passages[1].title], k)
        _expect(1 <= len(hits) <= k, f"k={k}: got {len(hits)} hits")


async def check_k_larger_than_corpus(retriever: Any, passages: Sequence[Passage]) -> None:
    """k above the corpus size is not an error: at most the whole corpus comes back."""
    (hits,) = await retriever.search([passages[0].title], len(passages) + 50)
    _expect(1 <= len(hits) <= len(passages), f"k > corpus size: got {len(hits)} hits")


async def check_k_below_one_is_a_config_error(
    retriever: Any, passages: Sequence[Passage], *, ks: Iterable[int] = (0, -1)
) -> None:
    """k < 1 raises hopgym's ConfigError (see hopgym.retrievers.search_args.check_search_args)."""
    for k in ks:
        try:
            await retriever.search(["anything"], k)
        except ConfigError:
            continue
        except Exception as exc:
            raise AssertionError(f"k={k} raised {type(exc).__name__}, not ConfigError: {exc}") from exc
        raise AssertionError(f"k={k} did not raise ConfigError")


async def check_empty_batch(retriever: Any, passages: Sequence[Passage]) -> None:
    """No queries, no results."""
    results = await retriever.search([], 3)
    _expect(results == [], f"search([], 3) must return [], got {results!r:.200}")


async def check_blank_query_gives_empty_list(
    retriever: Any, passages: Sequence[Passage], *, blanks: Iterable[str] = ("", "   ", "\n\t")
) -> None:
    """A blank query gets ``[]`` (not an error) and does not disturb its batch."""
    for query in blanks:
        results = await retriever.search([query, passages[0].title], 3)
        _expect(results[0] == [], f"blank query {query!r} must give [], got {_ids(results[0])}")
        _expect(len(results[1]) >= 1, f"the query after the blank {query!r} found nothing")


async def check_odd_queries_never_raise(retriever: Any, passages: Sequence[Passage]) -> None:
    """Query-language syntax, other scripts, emoji, control whitespace and a long query are just text."""
    results = await retriever.search(list(ODD_QUERIES), 3)
    _expect(len(results) == len(ODD_QUERIES), "one result list per query")
    _expect(all(len(hits) <= 3 for hits in results), "at most k hits per query")


async def check_batch_order_preserved(retriever: Any, passages: Sequence[Passage]) -> None:
    """Results come in query order, and a query's hits do not depend on its batch."""
    queries = [p.title for p in passages[20:28]]
    batched = await retriever.search(queries, 3)
    singles = [(await retriever.search([q], 3))[0] for q in queries]
    _expect(
        [_ids(h) for h in batched] == [_ids(h) for h in singles], "a batch must answer as the queries alone"
    )
    reversed_batch = await retriever.search(list(reversed(queries)), 3)
    _expect(
        [_ids(h) for h in reversed_batch] == [_ids(h) for h in reversed(singles)],
        "a reversed batch must answer in reversed order",
    )


async def check_concurrent_calls_match_sequential(retriever: Any, passages: Sequence[Passage]) -> None:
    """Concurrent searches give what the same searches give one after another."""
    queries = [p.title for p in passages[30:46]]
    sequential = [(await retriever.search([q], 2))[0] for q in queries]
    concurrent = await asyncio.gather(*(retriever.search([q], 2) for q in queries))
    _expect(
        [_ids(r[0]) for r in concurrent] == [_ids(h) for h in sequential],
        "concurrent calls must match sequential ones",
    )


async def check_duplicate_queries_in_one_batch(retriever: Any, passages: Sequence[Passage]) -> None:
    """The same query three times in a batch gets the same hits three times."""
    query = " ".join(passages[2].text.split()[:3])
    results = await retriever.search([query] * 3, 3)
    _expect(_ids(results[0]) == _ids(results[1]) == _ids(results[2]), "duplicate queries must match")


async def check_aclose_is_idempotent(retriever: Any, passages: Sequence[Passage]) -> None:
    """A retriever searches, then ``aclose`` may be called twice. (It closes ``retriever``.)"""
    (hits,) = await retriever.search([passages[0].title], 2)
    _expect(bool(hits), "a query naming a passage found nothing")
    await retriever.aclose()
    await retriever.aclose()


#: The checks run on one shared retriever, by name (``check_aclose_is_idempotent`` runs last, on its own).
RETRIEVER_CHECKS: dict[str, Callable[[Any, Sequence[Passage]], Awaitable[None]]] = {
    "result_types_and_shape": check_result_types_and_shape,
    "finds_passage_by_its_own_text": check_finds_passage_by_its_own_text,
    "passage_fields_round_trip": check_passage_fields_round_trip,
    "k_is_respected": check_k_is_respected,
    "k_larger_than_corpus": check_k_larger_than_corpus,
    "k_below_one_is_a_config_error": check_k_below_one_is_a_config_error,
    "empty_batch": check_empty_batch,
    "blank_query_gives_empty_list": check_blank_query_gives_empty_list,
    "odd_queries_never_raise": check_odd_queries_never_raise,
    "batch_order_preserved": check_batch_order_preserved,
    "concurrent_calls_match_sequential": check_concurrent_calls_match_sequential,
    "duplicate_queries_in_one_batch": check_duplicate_queries_in_one_batch,
}


def _check_passages(passages: Sequence[Passage]) -> list[Passage]:
    passages = list(passages)
    if len(passages) < MIN_CHECK_PASSAGES:
        raise ConfigError(
            f"check_retriever needs at least {MIN_CHECK_PASSAGES} passages, got {len(passages)}: pass more, "
            "or leave passages=None for a generated corpus"
        )
    if len({p.id for p in passages}) != len(passages):
        raise ConfigError("check_retriever needs passages with unique ids")
    return passages


@contextlib.asynccontextmanager
async def _opened(factory: Factory, passages: Sequence[Passage]) -> AsyncIterator[Any]:
    made = factory(passages)
    if hasattr(made, "__aenter__"):
        async with made as retriever:
            yield retriever
        return
    retriever = await made if inspect.isawaitable(made) else made
    try:
        yield retriever
    finally:
        await retriever.aclose()


def _is_retriever(obj: object) -> bool:
    # A class has search/aclose attributes too, but it is a factory.
    return (
        not isinstance(obj, type)
        and callable(getattr(obj, "search", None))
        and callable(getattr(obj, "aclose", None))
    )


async def _run(name: str, check: Callable[[], Awaitable[None]], failures: dict[str, str]) -> None:
    try:
        await check()
    except Exception as exc:  # a check failing by raising anything is a failure of that check
        failures[name] = str(exc) if isinstance(exc, AssertionError) else f"{type(exc).__name__}: {exc}"


async def acheck_retriever(
    retriever_or_factory: Any,
    *,
    passages: Sequence[Passage] | None = None,
    skip: Iterable[str] = (),
) -> None:
    """Run the conformance checks; raise :class:`RetrieverCheckError` naming each one that failed.

    ``retriever_or_factory``: a factory called with the passages, returning a retriever over exactly them (or
    an awaitable of one, or an async context manager yielding one); or a ready retriever, whose corpus must
    then be given as ``passages``. A factory's retriever is closed at the end and a second one checks that
    ``aclose`` is idempotent; a retriever given ready is closed twice at the end for the same check.
    ``skip`` names checks (keys of :data:`RETRIEVER_CHECKS`, or ``"aclose_is_idempotent"``) not to run.
    """
    skipped = set(skip)
    unknown = skipped - set(RETRIEVER_CHECKS) - {"aclose_is_idempotent"}
    if unknown:
        raise ConfigError(f"skip names unknown checks {sorted(unknown)}; valid: {sorted(RETRIEVER_CHECKS)}")
    ready = _is_retriever(retriever_or_factory)
    if ready and passages is None:
        raise ConfigError(
            "check_retriever got a ready retriever but no passages: pass passages= (its exact corpus), or "
            "pass a factory (passages -> retriever) to check it on a generated corpus"
        )
    if not ready and not callable(retriever_or_factory):
        raise ConfigError("check_retriever needs a Retriever or a factory (passages -> Retriever)")
    corpus = _check_passages(passages if passages is not None else conformance_passages())
    failures: dict[str, str] = {}

    async def run_all(retriever: Any) -> None:
        for name, check in RETRIEVER_CHECKS.items():
            if name not in skipped:
                await _run(name, functools.partial(check, retriever, corpus), failures)

    if ready:
        await run_all(retriever_or_factory)
        if "aclose_is_idempotent" not in skipped:
            await _run(
                "aclose_is_idempotent",
                functools.partial(check_aclose_is_idempotent, retriever_or_factory, corpus),
                failures,
            )
    else:
        async with _opened(retriever_or_factory, corpus) as retriever:
            await run_all(retriever)
        if "aclose_is_idempotent" not in skipped:

            async def fresh_aclose() -> None:
                async with _opened(retriever_or_factory, corpus[:MIN_CHECK_PASSAGES]) as fresh:
                    await check_aclose_is_idempotent(fresh, corpus)

            await _run("aclose_is_idempotent", fresh_aclose, failures)
    if failures:
        raise RetrieverCheckError(failures)


def check_retriever(
    retriever_or_factory: Any,
    *,
    passages: Sequence[Passage] | None = None,
    skip: Iterable[str] = (),
) -> None:
    """Synchronous :func:`acheck_retriever` (runs its own event loop; inside one, await that instead)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        raise RuntimeError(
            "check_retriever was called inside a running event loop: await acheck_retriever(...)"
        )
    asyncio.run(acheck_retriever(retriever_or_factory, passages=passages, skip=skip))
