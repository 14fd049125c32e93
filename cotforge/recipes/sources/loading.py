"""Read rows from the Hub, a local file or the built-in samples, and turn them into Problems."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from cotforge.answers import CHOICE_LABELS, AnswerType, UnusableGold, normalise_gold
from cotforge.recipes.sources.builtin import BUILTIN_SOURCES, BuiltinSource, content_id
from cotforge.schemas.problem import Problem
from cotforge.schemas.recipe import Recipe, SourceSpec

SAMPLE_PACKAGE = "cotforge.recipes.samples"


class SourceError(ValueError):
    """A source that cannot be read at all: missing file, missing columns, unknown format."""


@dataclass
class LoadedSource:
    name: str
    problems: list[Problem]
    invalid: list[tuple[int, str]] = field(default_factory=list)  # (row index, why) for rows kept out
    merged: int = 0  # rows that repeated an earlier row (same question and gold) and were merged into it


def sample_rows(dataset: str) -> list[dict[str, Any]]:
    """The ~30 real rows shipped for a built-in data set, in its Hub schema."""
    text = resources.files(SAMPLE_PACKAGE).joinpath(f"{dataset}.jsonl").read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def _hub_rows(hub_id: str, config: str | None, split: str, revision: str | None) -> Iterable[Mapping[str, Any]]:
    import datasets

    try:
        return datasets.load_dataset(hub_id, config, split=split, revision=revision)
    except Exception as error:  # datasets raises many kinds; the user needs the id and the reason
        where = f"{hub_id}" + (f" (config {config})" if config else "") + f", split {split}"
        raise SourceError(f"could not load {where}: {error}") from error


def file_rows(path: Path) -> list[dict[str, Any]]:
    """The rows of a local .jsonl, .json, .parquet or .csv file; SourceError names the file and what is wrong."""
    import polars as pl

    if not path.is_file():
        raise SourceError(f"{path}: no such file")
    suffix = path.suffix.lower()
    try:
        if suffix in (".jsonl", ".ndjson"):
            # Read line by line: rows of a user file need not share one column type.
            rows = []
            for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
                if line.strip():
                    try:
                        rows.append(json.loads(line))
                    except json.JSONDecodeError as error:
                        raise SourceError(f"{path}: line {number}: not valid JSON: {error.msg}") from None
                    if not isinstance(rows[-1], dict):
                        raise SourceError(f"{path}: line {number}: a row must be a JSON object, not {rows[-1]!r:.40}")
            return rows
        if suffix == ".json":
            data = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(data, list) or not all(isinstance(row, dict) for row in data):
                raise SourceError(f"{path}: a .json source must hold a list of objects")
            return data
        if suffix == ".parquet":
            frame = pl.read_parquet(path)
        elif suffix == ".csv":
            frame = pl.read_csv(path)
        else:
            raise SourceError(f"{path}: unsupported file type {suffix!r} (use .jsonl, .json, .parquet or .csv)")
    except UnicodeDecodeError:
        raise SourceError(f"{path}: not UTF-8 text; save it as UTF-8") from None
    except (pl.exceptions.PolarsError, json.JSONDecodeError, OSError) as error:
        raise SourceError(f"{path}: {error}") from error
    return frame.to_dicts()


def _check_columns(rows: Iterable[Mapping[str, Any]], needed: Iterable[str], where: str) -> None:
    first = next(iter(rows), None)
    if first is None:
        raise SourceError(f"{where}: no rows")
    missing = sorted(set(needed) - set(first))
    if missing:
        raise SourceError(f"{where}: missing column(s) {', '.join(missing)}; found {', '.join(sorted(first))}")


def _convert(rows: Iterable[Mapping[str, Any]], convert, limit: int | None) -> tuple[list[Problem], list, int]:
    """Problems in row order, the rows left out with why, and how many repeated rows were merged.

    A row that repeats an earlier one (same id: same question, or same row id) with the same gold answer is merged
    into it; with a different gold answer, both rows are left out as a conflict: nobody can say which is right."""
    problems: dict[str, Problem] = {}
    first_row: dict[str, int] = {}
    conflicts: set[str] = set()
    invalid: list[tuple[int, str]] = []
    merged = 0
    for index, row in enumerate(rows):
        if limit is not None and len(problems) >= limit:
            break
        try:
            problem = convert(row, index)
        except (ValidationError, ValueError, KeyError, TypeError) as error:
            invalid.append((index, _short(error)))
            continue
        earlier = problems.get(problem.id)
        if problem.id in conflicts:
            invalid.append((index, f"the same question as row {first_row[problem.id]} with another gold answer"))
        elif earlier is None:
            problems[problem.id], first_row[problem.id] = problem, index
        elif (earlier.answer, earlier.choices, earlier.question) == (problem.answer, problem.choices, problem.question):
            merged += 1
        else:
            conflicts.add(problem.id)
            del problems[problem.id]
            why = f"conflict: gold {earlier.answer!r} in row {first_row[problem.id]}, {problem.answer!r} in row {index}"
            invalid += [(first_row[problem.id], why), (index, why)]
    return list(problems.values()), sorted(invalid), merged


def _short(error: Exception) -> str:
    if isinstance(error, ValidationError):
        return "; ".join(f"{'.'.join(map(str, e['loc'])) or 'row'}: {e['msg']}" for e in error.errors())
    if isinstance(error, KeyError):
        return f"missing field {error.args[0]!r}"
    return str(error)


def _builtin_rows(source: BuiltinSource, spec: SourceSpec, sample: bool) -> Iterator[Mapping[str, Any]]:
    if sample:
        yield from sample_rows(source.name)
        return
    configs = (spec.config,) if spec.config else source.configs
    for config in configs:
        yield from _hub_rows(source.hub_id, config, spec.split, spec.revision)


def _mapped_problem(spec: SourceSpec, name: str, row: Mapping[str, Any], index: int) -> Problem:
    """A user row through the recipe's field mapping."""
    fields = {"question": "question", "answer": "answer", **spec.fields}
    question = row[fields["question"]]
    if not isinstance(question, str):
        raise ValueError(f"question ({fields['question']!r}) must be text, got {_json_type(question)}")
    choices = _choices(row[fields["choices"]]) if "choices" in fields else None
    raw_answer = row[fields["answer"]]
    answer_type = spec.answer_type or AnswerType.number
    answer = _gold(raw_answer, answer_type, choices)
    row_id = row.get(fields["id"]) if "id" in fields else None
    rationale = row.get(fields["rationale"]) if "rationale" in fields else None
    return Problem(
        id=f"{name}-{spec.split}-{row_id}" if row_id is not None else content_id(name, spec.split, question),
        dataset=name,
        split=spec.split,
        question=question,
        choices=choices,
        answer=answer,
        answer_type=answer_type,
        human_rationale=str(rationale) if rationale else None,
    )


def _choices(value: Any) -> list[str]:
    if isinstance(value, Mapping) and "text" in value:
        return [str(t) for t in value["text"]]
    if isinstance(value, (list, tuple)):
        return [str(t) for t in value]
    raise ValueError(f"choices must be a list or {{label, text}}, got {type(value).__name__}")


def _json_type(value: Any) -> str:
    return "null" if value is None else {dict: "an object", list: "a list"}.get(type(value), type(value).__name__)


def _gold(value: Any, answer_type: AnswerType, choices: list[str] | None) -> str:
    # A list, an object or null is never one answer: refuse it rather than read a number out of its text.
    if value is None or isinstance(value, (Mapping, list, tuple)):
        raise ValueError(f"answer must be a single value, got {_json_type(value)}")
    if answer_type is AnswerType.choice and isinstance(value, int) and not isinstance(value, bool):
        if choices is None or not 0 <= value < len(choices):
            raise ValueError(f"answer index {value} is out of range")
        return CHOICE_LABELS[value]
    if isinstance(value, bool):
        return str(value)
    try:
        return normalise_gold(str(value), answer_type, choices)
    except UnusableGold as error:
        raise ValueError(str(error)) from None


def load_problems(spec: SourceSpec, *, sample: bool = False, limit: int | None = None) -> LoadedSource:
    """Problems of one source, in source order; rows that do not make a valid Problem are listed, not dropped."""
    name = spec.display_name
    if spec.dataset is not None:
        source = BUILTIN_SOURCES[spec.dataset]
        where = "built-in sample " + source.name if sample else source.hub_id
        rows = list(_builtin_rows(source, spec, sample))
        _check_columns(rows, source.columns, where)
        split = "train" if sample else spec.split  # the samples are training rows
        problems, invalid, merged = _convert(rows, lambda row, _i: source.to_problem(row, split), limit)
    else:
        if spec.hub_id is not None:
            where = spec.hub_id
            rows = list(_hub_rows(spec.hub_id, spec.config, spec.split, spec.revision))
        else:
            where = str(spec.path)
            rows = file_rows(Path(str(spec.path)))
        mapping = {"question": "question", "answer": "answer", **spec.fields}
        _check_columns(rows, [mapping["question"], mapping["answer"]], where)
        problems, invalid, merged = _convert(rows, lambda row, i: _mapped_problem(spec, name, row, i), limit)
    if not problems and invalid:
        index, why = invalid[0]
        raise SourceError(f"{where}: no valid rows; row {index}: {why}")
    return LoadedSource(name=name, problems=problems, invalid=invalid, merged=merged)


def load_sources(recipe: Recipe, sample: bool = False, warn: Callable[[str], None] | None = None) -> list[LoadedSource]:
    """Every source of `recipe`, its `limit` applied; rows left out or merged are told to `warn`, one sentence each."""
    loaded = []
    for spec in recipe.sources:
        source = load_problems(spec, sample=sample, limit=recipe.limit)
        if warn is not None and source.invalid:
            index, why = source.invalid[0]
            warn(
                f"{source.name}: {len(source.invalid)} row(s) are not valid problems and are left out; first, row "
                f"{index}: {why}"
            )
        if warn is not None and source.merged:
            warn(
                f"{source.name}: {source.merged} repeated row(s) (same question and gold answer) merged into the first"
            )
        loaded.append(source)
    return loaded
