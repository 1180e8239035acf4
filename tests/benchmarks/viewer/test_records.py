"""What the viewer embeds: passages split from each protocol's real observations, deduplicated, and JSON
that cannot end its script element early."""

from __future__ import annotations

import json
import re

import pytest

from hopgym.agents.rollout.trajectory import Trajectory, Turn
from hopgym.benchmarks.reports import score_episode
from hopgym.benchmarks.viewer import embed_json, render_page, split_passages
from hopgym.benchmarks.viewer.records import PassageTable, episode_record
from hopgym.envs.protocols import get_protocol
from hopgym.types import Passage, Task

PASSAGES = [
    Passage(
        id="d1", title="Ada Lovelace", text="Ada Lovelace was an English mathematician.\nShe wrote notes."
    ),
    Passage(id="d2", title="Analytical Engine", text="The Analytical Engine was a proposed computer."),
    Passage(id="d3", title="", text="An untitled passage (1) with a parenthesis."),
]


@pytest.mark.parametrize("protocol", ["search_r1", "research", "r1_searcher", "tool_call"])
def test_split_passages_of_every_builtin_protocol(protocol: str) -> None:
    proto = get_protocol(protocol)
    observation = proto.wrap_observation(proto.format_passages(PASSAGES))
    pieces = split_passages(observation, len(PASSAGES))
    assert pieces is not None, observation
    for piece, passage in zip(pieces, PASSAGES, strict=True):
        assert passage.text.splitlines()[0] in piece
        others = [p for p in PASSAGES if p is not passage]
        assert not any(o.text.splitlines()[0] in piece for o in others)


def test_split_passages_gives_up_when_the_count_differs() -> None:
    proto = get_protocol("search_r1")
    observation = proto.wrap_observation(proto.format_passages(PASSAGES))
    assert split_passages(observation, 2) is None
    assert split_passages(observation, 0) is None
    assert split_passages("free text that is no passage list", 3) is None


def test_passage_table_stores_each_passage_once() -> None:
    table = PassageTable()
    assert [table.add("p1", "a"), table.add("p2", "b"), table.add("p1", "a"), table.add("p1", "other")] == [
        0,
        1,
        0,
        2,
    ]
    assert table.rows == [["p1", "a"], ["p2", "b"], ["p1", "other"]]


def test_episode_record_marks_supporting_passages_and_keeps_unsplittable_observations() -> None:
    proto = get_protocol("search_r1")
    turns = (
        Turn(
            text="<search> ada </search>",
            finish_reason="stop",
            observation=proto.wrap_observation(proto.format_passages(PASSAGES)),
            action_kind="search",
            query="ada",
            passage_ids=("d1", "d2", "d3"),
            generation_s=0.5,
            token_ids=(11, 12, 13),
            step_s=0.01,
        ),
        Turn(
            text="<search> x </search>",
            finish_reason="stop",
            observation="something unexpected",
            action_kind="search",
            query="x",
            passage_ids=("d8", "d9"),
        ),
        Turn(
            text="",
            finish_reason="tool_calls",
            observation="",
            action_kind="answer",
            answer="Ada",
            tool_calls=({"id": "c1", "function": {"name": "answer", "arguments": '{"answer": "Ada"}'}},),
        ),
    )
    traj = Trajectory(
        task_id="t",
        sample_index=0,
        group_id="t",
        termination="answered",
        turns=turns,
        reward=1.0,
        reward_components={"em": 1.0},
        answer="Ada",
        num_searches=2,
    )
    task = Task(
        id="t",
        question="Who?",
        golden_answers=("Ada Lovelace", "Ada"),
        metadata={"supporting_passage_ids": ["d1"]},
    )
    table = PassageTable()
    record = episode_record(traj, score_episode(traj, task), task, table)
    assert record["o"] == "correct" and record["g"] == ["Ada Lovelace", "Ada"] and record["sup"] == ["d1"]
    assert [table.rows[i][0] for i in record["t"][0]["pi"]] == ["d1", "d2", "d3"]
    assert record["t"][0]["nt"] == 3 and "nt" not in record["t"][1]
    assert record["t"][1]["ob"] == "something unexpected" and record["t"][1]["ids"] == ["d8", "d9"]
    assert (
        record["t"][2]["an"] == "Ada" and "ob" not in record["t"][2] and record["t"][2]["fr"] == "tool_calls"
    )
    assert json.loads(record["t"][2]["tc"])[0]["function"]["name"] == "answer"
    assert record["m"]["em"] == 1.0 and record["rc"] == {"em": 1.0}


HOSTILE = 'a </script><script>alert(1)</script> <!-- b --> & </SCRIPT > \u2028 "quote" \\ end'


def test_embed_json_cannot_close_the_script_element() -> None:
    text = embed_json({"x": HOSTILE, HOSTILE: [HOSTILE]})
    assert not re.search(r"[<>&\u2028\u2029]", text)
    assert json.loads(text) == {"x": HOSTILE, HOSTILE: [HOSTILE]}


def test_render_page_has_one_data_element_and_escapes_the_title() -> None:
    page = render_page({"episodes": [{"q": HOSTILE}], "passages": [], "run": {}}, title="<b>run</b>")
    assert page.count("</script>") == 2  # the data element and the viewer script, nothing from the data
    assert "<title>&lt;b&gt;run&lt;/b&gt;</title>" in page
    data = page.split('<script type="application/json" id="data">', 1)[1].split("</script>", 1)[0]
    assert json.loads(data)["episodes"][0]["q"] == HOSTILE
    assert "__DATA__" not in page and "__JS__" not in page and "__CSS__" not in page
