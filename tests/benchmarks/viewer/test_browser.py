"""The viewer page in a real headless Chromium, opened from disk (file://) as a person would.

The 10,000-episode test loads a synthetic run, filters it, opens an episode, checks what is shown against
the run's own numbers (computed in Python, not by the page) and saves a screenshot under ``.ci/artifacts/``
(``$HOPGYM_ARTIFACTS`` when set) for CI to keep.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from hopgym.agents.rollout.store import TrajectoryStore
from hopgym.agents.rollout.trajectory import Trajectory, Turn
from hopgym.benchmarks.reports import load_run
from hopgym.benchmarks.reports.synthetic import write_synthetic_run
from hopgym.benchmarks.viewer import write_viewer
from hopgym.benchmarks.viewer.chromium import Browser, Page

READY = "document.body.dataset.ready === '1'"


def artifacts_dir() -> Path:
    configured = os.environ.get("HOPGYM_ARTIFACTS")
    return Path(configured) if configured else Path(__file__).resolve().parents[3] / ".ci" / "artifacts"


def _text(page: Page, selector: str) -> str:
    value = page.evaluate(f"document.querySelector({json.dumps(selector)})?.textContent ?? null")
    assert value is not None, f"nothing matches {selector}"
    return str(value)


def _count(page: Page) -> str:
    return _text(page, "#count")


# Markup in every field a model or a dataset controls; the page must show it as text and run none of it.
INJECTED = '<script>window.__pwned = 1</script><img src=x onerror="window.__pwned = 2"></script><!--'


def test_html_in_a_trajectory_is_shown_as_text(tmp_path: Path, browser: Browser) -> None:
    run = tmp_path / "run"
    run.mkdir()
    turns = (
        Turn(
            text=f"<think>{INJECTED}</think>\n<search> {INJECTED} </search>",
            finish_reason="stop",
            observation=f"\n\n<information>Doc 1(Title: x) {INJECTED}\nDoc 2(Title: y) plain</information>\n\n",
            action_kind="search",
            query=INJECTED,
            passage_ids=("p1", "p2"),
            tool_calls=({"id": "c1", "function": {"name": "search", "arguments": INJECTED}},),
        ),
        Turn(
            text=f"<answer> {INJECTED} </answer>",
            finish_reason="stop",
            observation="",
            action_kind="answer",
            answer=INJECTED,
        ),
    )
    traj = Trajectory(
        task_id="evil",
        sample_index=0,
        group_id="evil",
        termination="answered",
        turns=turns,
        reward=0.0,
        answer=INJECTED,
        num_searches=1,
    )
    with TrajectoryStore(run / "trajectories.jsonl", fsync=False) as store:
        store.append(traj)
    task = {
        "id": "evil",
        "question": f"Q {INJECTED}?",
        "golden_answers": [INJECTED],
        "metadata": {"supporting_passage_ids": ["p1"]},
    }
    (run / "tasks.jsonl").write_text(json.dumps(task) + "\n")
    (run / "config.json").write_text(json.dumps({"data": str(run / "tasks.jsonl")}))
    path = write_viewer(run)

    page = browser.new_page()
    page.navigate(path.as_uri() + "#episode=evil", ready=READY)
    assert page.evaluate("window.__pwned === undefined")
    assert page.evaluate("document.querySelectorAll('script').length") == 2
    assert page.evaluate("document.querySelectorAll('#detail img, #list img').length") == 0
    assert INJECTED in _text(page, "#detail .question")
    assert _text(page, "#detail .answers .value") == INJECTED
    assert INJECTED in _text(page, "#detail .turn pre")
    assert "<script>window.__pwned = 1</script>" in _text(page, "#detail .turn .tool-calls")
    assert _text(page, "#detail .passage.supporting .pid") == "p1"
    assert INJECTED in _text(page, "#detail .passage.supporting pre")
    assert page.evaluate("window.__pwned === undefined")


@pytest.fixture(scope="module")
def big_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = write_synthetic_run(tmp_path_factory.mktemp("viewer") / "run", episodes=10_000, seed=7)
    write_viewer(run)
    return run


@pytest.mark.slow
def test_ten_thousand_episodes_filter_open_and_screenshot(big_run: Path, browser: Browser) -> None:
    episodes = load_run(big_run).episodes()
    page = browser.new_page()
    page.navigate((big_run / "viewer" / "index.html").as_uri(), ready=READY)
    assert _count(page) == "10,000 of 10,000 episodes"
    assert _text(page, "#facts").startswith("agent: synthetic · protocol: search_r1 · data: ")
    # Virtualised: a screenful of rows exists, not 10,000.
    assert 10 < page.evaluate("document.querySelectorAll('#list .row').length") < 100

    # Only wrong answers: clicks on the outcome checkboxes, as a person would.
    page.click("#f-correct")
    page.click("#f-failed")
    wrong = [e for e in episodes if e.outcome == "wrong"]
    assert _count(page) == f"{len(wrong):,} of 10,000 episodes"
    assert page.evaluate(
        "[...document.querySelectorAll('#list .row .badge:first-child')].every(b => b.textContent === 'wrong')"
    )

    # Then one dataset, two searches, and invalid actions only.
    page.evaluate(
        "(() => { const s = document.getElementById('f-dataset'); s.value = 'hotpotqa'; s.dispatchEvent(new Event('change')); })()"
    )
    page.evaluate(
        "(() => { const s = document.getElementById('f-searches'); s.value = '2'; s.dispatchEvent(new Event('change')); })()"
    )
    chosen = [e for e in wrong if e.dataset == "hotpotqa" and e.num_searches == 2]
    assert _count(page) == f"{len(chosen):,} of 10,000 episodes"
    page.click("#f-invalid")
    with_invalid = [e for e in chosen if e.invalid_actions]
    assert with_invalid, "the synthetic run should have invalid actions here"
    assert _count(page) == f"{len(with_invalid):,} of 10,000 episodes"
    page.click("#f-invalid")

    # Text search, typed into the box (debounced): episodes whose question or turns mention Grace Hopper.
    page.click("#f-text")
    page.type_text("grace hopper")
    trajectories = {t.task_id: t for t in load_run(big_run).trajectories}
    hits = [
        e
        for e in chosen
        if "grace hopper"
        in " ".join([e.question or "", *(t.text for t in trajectories[e.task_id].turns)]).lower()
    ]
    assert hits
    page.wait_for(
        f"document.getElementById('count').textContent === {json.dumps(f'{len(hits):,} of 10,000 episodes')}"
    )

    # Open the first answered episode listed.
    first = next(e for e in hits if e.answer is not None)
    page.click(f"#list .row[data-key={json.dumps(first.key)}]")
    assert _text(page, "#detail h2").strip().endswith(first.key)
    assert _text(page, "#detail .answers > div:first-child .value") == first.answer
    assert _text(page, "#detail .answers > div:last-child .value") == " | ".join(first.golden_answers)
    assert page.evaluate("document.querySelectorAll('#detail .turn').length") == len(
        trajectories[first.task_id].turns
    )
    queries = [t.query for t in trajectories[first.task_id].turns if t.query]
    assert [
        q.strip()
        for q in page.evaluate("[...document.querySelectorAll('#detail .query')].map(q => q.textContent)")
    ][: len(queries)] == queries
    # Passages: collapsed at first, supporting ones marked as the task's metadata says.
    supporting = set(load_run(big_run).tasks[first.task_id].metadata["supporting_passage_ids"])
    shown_ids = page.evaluate(
        "[...document.querySelectorAll('#detail .passage')].map(p => [p.querySelector('.pid').textContent, p.classList.contains('supporting')])"
    )
    retrieved = [pid for t in trajectories[first.task_id].turns for pid in t.passage_ids]
    assert [pid for pid, _ in shown_ids] == retrieved
    assert all(marked == (pid in supporting) for pid, marked in shown_ids)
    assert page.evaluate("[...document.querySelectorAll('#detail details.passages')].every(d => !d.open)")
    page.click("#detail details.passages summary")
    assert page.evaluate("document.querySelector('#detail details.passages').open")

    # The view is in the URL: reloading it restores filters and the open episode.
    url = page.evaluate("location.href")
    assert "episode=" in url and "dataset=hotpotqa" in url
    shot = page.screenshot(artifacts_dir() / "viewer-10k-episode.png")
    assert shot.read_bytes()[:4] == b"\x89PNG"
    page.navigate(url, ready=READY)
    assert _count(page) == f"{len(hits):,} of 10,000 episodes"
    assert _text(page, "#detail h2").strip().endswith(first.key)


@pytest.mark.slow
def test_scrolling_renders_the_rows_in_view(big_run: Path, browser: Browser) -> None:
    episodes = load_run(big_run).episodes()
    page = browser.new_page()
    page.navigate((big_run / "viewer" / "index.html").as_uri(), ready=READY)
    page.evaluate(
        "(() => { const l = document.getElementById('list'); l.scrollTop = l.scrollHeight; l.dispatchEvent(new Event('scroll')); })()"
    )
    page.wait_for(
        f"[...document.querySelectorAll('#list .row')].some(r => r.dataset.key === {json.dumps(episodes[-1].key)})"
    )
    page.click(f"#list .row[data-key={json.dumps(episodes[-1].key)}]")
    assert _text(page, "#detail h2").strip().endswith(episodes[-1].key)
