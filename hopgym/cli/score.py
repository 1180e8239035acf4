"""``hopgym score``: score a JSONL file of answers or episodes with named rewards."""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

__all__ = ["register", "run"]

_MAX_REPORTED_ERRORS = 20

# Kept in sync with hopgym.envs.rewards.registry (a test checks it); written out here so that building the
# parser does not import the environments.
_DESCRIPTION = """\
Score each line of a JSONL file with one or more named rewards.

Each input line is a JSON object with "golden_answers" (a non-empty list of strings) and the text the
reward reads:
  "prediction" (a string, or null for no answer) for em, f1, sub_em, cover_em;
  "response" (the whole episode text after the prompt) for search_r1, search_r1_sub, research,
  r1_searcher, r1_searcher_stage1.
"finished" (true/false, default true) says whether the generation ended on its own (research scores a
cut-off generation 0). Other fields are copied to the output unchanged.

Each output line is its input line plus "score", the score of the first --reward. With several --reward
options it also gets "scores": {reward name: score}; with --components, "components": {reward name:
{component: value}}. A summary (mean per reward) is printed.

Bad input (invalid JSON, a missing field, a wrong type, a blank line, an empty file) stops the command
with exit code 2 and FILE:LINE: reason messages on stderr, and no output file is written."""


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "score",
        help="score a JSONL file of answers or episodes with named rewards",
        description=_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--reward",
        action="append",
        required=True,
        metavar="NAME",
        help='reward name (repeatable; the first one fills "score")',
    )
    parser.add_argument("--input", required=True, metavar="IN.jsonl", help="input JSONL file, or - for stdin")
    parser.add_argument(
        "--output",
        metavar="OUT.jsonl",
        help="write scored lines here (- for stdout, the summary then goes to stderr); default: summary only",
    )
    parser.add_argument("--components", action="store_true", help="also write each reward's components")
    parser.set_defaults(handler=run)


@dataclass(frozen=True)
class _Record:
    data: dict[str, Any]
    golden_answers: tuple[str, ...]
    prediction: str | None
    response: str
    finished: bool


class _InputError(Exception):
    """The input cannot be scored; the message is ready for stderr."""


def run(args: argparse.Namespace) -> int:
    from hopgym.envs.rewards import PREDICTION_REWARDS, get_reward
    from hopgym.errors import ConfigError

    names = list(dict.fromkeys(args.reward))
    try:
        rewards = {name: get_reward(name) for name in names}
    except ConfigError as exc:
        sys.stderr.write(f"hopgym score: {exc}\n")
        return 2
    needs_prediction = any(name in PREDICTION_REWARDS for name in names)
    needs_response = any(name not in PREDICTION_REWARDS for name in names)
    source = "<stdin>" if args.input == "-" else args.input
    try:
        text = sys.stdin.read() if args.input == "-" else _read_text(Path(args.input))
        records = _parse(text, source, needs_prediction=needs_prediction, needs_response=needs_response)
    except _InputError as exc:
        sys.stderr.write(f"{exc}\n")
        return 2

    from hopgym.types import RewardInput

    scored: list[dict[str, Any]] = []
    totals: dict[str, list[float]] = {name: [] for name in names}
    for record in records:
        inp = RewardInput(
            response=record.response,
            golden_answers=record.golden_answers,
            prediction=record.prediction,
            finished=record.finished,
        )
        results = {name: fn(inp) for name, fn in rewards.items()}
        out = dict(record.data)
        out["score"] = float(results[names[0]].score)
        if len(names) > 1:
            out["scores"] = {name: float(result.score) for name, result in results.items()}
        if args.components:
            out["components"] = {
                name: {key: float(value) for key, value in result.reward_components.items()}
                for name, result in results.items()
            }
        scored.append(out)
        for name, result in results.items():
            totals[name].append(float(result.score))

    if args.output == "-":
        _write_lines(sys.stdout, scored)
    elif args.output is not None:
        try:
            _write_atomically(Path(args.output), scored)
        except OSError as exc:
            sys.stderr.write(f"hopgym score: cannot write {args.output}: {exc}\n")
            return 1
    _print_summary(totals, source, to_stderr=args.output == "-")
    return 0


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise _InputError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    except OSError as exc:
        raise _InputError(f"{path}: cannot read: {exc.strerror or exc}") from exc


def _parse(text: str, source: str, *, needs_prediction: bool, needs_response: bool) -> list[_Record]:
    # Split on "\n" only: str.splitlines would also split on U+2028 and friends, which JSON strings may hold.
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    if not lines:
        raise _InputError(f"{source}: no records (the file is empty)")
    records: list[_Record] = []
    errors: list[str] = []
    for number, line in enumerate(lines, start=1):
        try:
            records.append(
                _parse_line(
                    line.removesuffix("\r"), needs_prediction=needs_prediction, needs_response=needs_response
                )
            )
        except ValueError as exc:
            errors.append(f"{source}:{number}: {exc}")
    if errors:
        shown = errors[:_MAX_REPORTED_ERRORS]
        if len(errors) > len(shown):
            shown.append(f"{source}: ... and {len(errors) - len(shown)} more bad lines")
        raise _InputError("\n".join(shown))
    return records


def _parse_line(line: str, *, needs_prediction: bool, needs_response: bool) -> _Record:
    if not line.strip():
        raise ValueError("blank line; JSONL needs one JSON object per line")
    try:
        data = json.loads(line)
    except json.JSONDecodeError as exc:
        raise ValueError(f"invalid JSON: {exc.msg} at column {exc.colno}") from None
    if not isinstance(data, dict):
        raise ValueError(f"expected a JSON object, got {type(data).__name__}")
    golds = data.get("golden_answers")
    if "golden_answers" not in data:
        raise ValueError('missing field "golden_answers" (a list of strings)')
    if not isinstance(golds, list) or not golds or not all(isinstance(gold, str) for gold in golds):
        got = json.dumps(golds, ensure_ascii=False)[:80]
        raise ValueError(f'"golden_answers" must be a non-empty list of strings, got {got}')
    prediction = data.get("prediction")
    if needs_prediction and "prediction" not in data:
        raise ValueError('missing field "prediction" (a string, or null for no answer)')
    if prediction is not None and not isinstance(prediction, str):
        raise ValueError(f'"prediction" must be a string or null, got {type(prediction).__name__}')
    response = data.get("response", "")
    if needs_response and "response" not in data:
        raise ValueError('missing field "response" (the episode text after the prompt)')
    if not isinstance(response, str):
        raise ValueError(f'"response" must be a string, got {type(response).__name__}')
    finished = data.get("finished", True)
    if not isinstance(finished, bool):
        raise ValueError(f'"finished" must be true or false, got {json.dumps(finished)[:80]}')
    return _Record(data, tuple(golds), prediction, response, finished)


def _write_lines(stream: IO[str], records: Sequence[Mapping[str, Any]]) -> None:
    for record in records:
        stream.write(json.dumps(record, ensure_ascii=False) + "\n")


def _write_atomically(path: Path, records: Sequence[Mapping[str, Any]]) -> None:
    # A temporary file in the target folder, renamed at the end, so a failure never leaves a partial output.
    temporary: str | None = None
    try:
        with tempfile.NamedTemporaryFile(
            "w", encoding="utf-8", dir=path.parent, prefix=f".{path.name}.", suffix=".tmp", delete=False
        ) as handle:
            temporary = handle.name
            _write_lines(handle, records)
        os.replace(temporary, path)
    except BaseException:
        if temporary is not None:
            Path(temporary).unlink(missing_ok=True)
        raise


def _print_summary(totals: Mapping[str, Sequence[float]], source: str, *, to_stderr: bool) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"hopgym score: {source}")
    table.add_column("reward")
    table.add_column("mean", justify="right")
    table.add_column("min", justify="right")
    table.add_column("max", justify="right")
    table.add_column("lines", justify="right")
    for name, values in totals.items():
        mean = sum(values) / len(values)
        table.add_row(name, f"{mean:.4f}", f"{min(values):.4f}", f"{max(values):.4f}", str(len(values)))
    Console(file=sys.stderr if to_stderr else sys.stdout).print(table)
