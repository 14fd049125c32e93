"""Turn a source's rows (rows.py: the Hub, a local file or a built-in sample) into Problems: checked in one pass,
repeats merged, read again batch by batch."""

from __future__ import annotations

import hashlib
from array import array
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import ValidationError

from cotforge.answers import CHOICE_LABELS, AnswerType, UnusableGold, normalise_gold
from cotforge.recipes.sources.builtin import BUILTIN_SOURCES, BuiltinSource, content_id
from cotforge.recipes.sources.checked import Selection, SourceCache, file_digest, stamp
from cotforge.recipes.sources.rows import (
    BATCH_ROWS,
    Rows,
    SourceError,
    check_columns,
    dataset_batches,
    file_batches,
    hub_dataset,
    sample_rows,
)
from cotforge.schemas.problem import Problem
from cotforge.schemas.recipe import Recipe, SourceSpec


@dataclass
class LoadedSource:
    """A source checked in one pass (rows left out with why, repeats merged, problems counted) and read again,
    batch by batch, each time its problems are iterated: no list of them is kept."""

    name: str
    count: int  # the problems an iteration yields
    read: Callable[[], Iterator[Problem]] = field(repr=False)
    invalid: list[tuple[int, str]] = field(default_factory=list)  # (row index, why) for rows kept out
    merged: int = 0  # rows that repeated an earlier row (same question and gold) and were merged into it
    # What the rows' state is known by (SourceCache), with the checking pass's result; None where it cannot be known
    stamp: str | None = None
    selection: Selection | None = field(default=None, repr=False)

    @classmethod
    def of(cls, name: str, problems: list[Problem]) -> LoadedSource:
        """A source made of problems already in memory."""
        return cls(name, len(problems), lambda: iter(problems))

    def __iter__(self) -> Iterator[Problem]:
        return self.read()

    @property
    def problems(self) -> list[Problem]:
        """Every problem at once: for small sources (an evaluation split, a sample), not for a corpus's source."""
        return list(self.read())


Convert = Callable[[Mapping[str, Any], int], Problem]
_CONVERT_ERRORS = (ValidationError, ValueError, KeyError, TypeError)


def text_digest(text: str) -> bytes:
    """16 bytes that stand for `text` where many are kept (ids met, questions compared)."""
    return hashlib.blake2b(text.encode(), digest_size=16).digest()


class _KnownIds:
    """The problem ids met so far, kept compactly: 16-byte digests in a sorted array, with each one's content digest
    (question, choices, gold), first row and whether a conflict was met (41 bytes an id, where a dict of the ids
    and their problems held the problems themselves)."""

    def __init__(self) -> None:
        self.ids = np.empty(0, "S16")
        self.content = np.empty(0, "S16")
        self.first = np.empty(0, np.int64)
        self.conflict = np.empty(0, bool)

    def find(self, digests: list[bytes]) -> list[int]:
        """Each digest's position, or -1 where it was not met."""
        if not len(self.ids) or not digests:
            return [-1] * len(digests)
        wanted = np.array(digests, "S16")
        at = np.searchsorted(self.ids, wanted)
        found = self.ids[np.minimum(at, len(self.ids) - 1)] == wanted
        return np.where(found, at, -1).tolist()

    def add(self, new: dict[bytes, list[Any]]) -> None:
        """Ids met for the first time in a batch: digest -> [content digest, first row, conflict]."""
        if not new:
            return
        ids = np.array(list(new), "S16")
        order = np.argsort(ids)
        values = list(new.values())
        at = np.searchsorted(self.ids, ids[order])
        self.ids = np.insert(self.ids, at, ids[order])
        self.content = np.insert(self.content, at, np.array([v[0] for v in values], "S16")[order])
        self.first = np.insert(self.first, at, np.array([v[1] for v in values], np.int64)[order])
        self.conflict = np.insert(self.conflict, at, np.array([v[2] for v in values], bool)[order])


def _select(batches: Callable[[], Iterator[Rows]], convert: Convert, limit: int | None) -> Selection:
    """One pass over the rows, batch by batch, as the list-loading reader did row by row. A row that repeats an
    earlier one (same id: same question, or same row id) with the same gold answer is merged into it; with a
    different gold answer, both rows are left out as a conflict: nobody can say which is right. Only digests of the
    problems are kept from one batch to the next."""
    known = _KnownIds()
    skip: array[int] = array("q")
    invalid: list[tuple[int, str]] = []
    conflicts: list[tuple[int, int, str]] = []  # (first row, row, its gold): the first row's gold is read after
    merged = count = start = 0
    for rows in batches():
        converted: list[tuple[int, Problem | str]] = []  # a problem, or why the row is not one
        for index, row in enumerate(rows, start):
            try:
                converted.append((index, convert(row, index)))
            except _CONVERT_ERRORS as error:
                converted.append((index, _short(error)))
        start += len(rows)
        digests = [text_digest(p.id) for _, p in converted if isinstance(p, Problem)]
        found = iter(zip(digests, known.find(digests), strict=True))
        new: dict[bytes, list[Any]] = {}  # ids met for the first time in this batch: [content, first row, conflict]
        for index, problem in converted:
            if limit is not None and count >= limit:
                return Selection(_sorted(skip), index, count, _told(invalid, conflicts, batches, convert), merged)
            if not isinstance(problem, Problem):
                invalid.append((index, problem))
                skip.append(index)
                continue
            digest, at = next(found)
            content = text_digest(repr((problem.answer, problem.choices, problem.question)))
            entry = new.get(digest)
            if entry is None and at >= 0:
                # numpy gives an S16 item back without its trailing NUL bytes: pad it again before comparing
                entry = [known.content[at].ljust(16, b"\0"), int(known.first[at]), bool(known.conflict[at])]
            if entry is None:
                new[digest] = [content, index, False]
                count += 1
                continue
            skip.append(index)
            if entry[2]:
                invalid.append((index, f"the same question as row {entry[1]} with another gold answer"))
            elif entry[0] == content:
                merged += 1
            else:
                if digest in new:
                    new[digest][2] = True
                else:
                    known.conflict[at] = True
                count -= 1
                skip.append(entry[1])
                conflicts.append((entry[1], index, problem.answer))
        known.add(new)
    return Selection(_sorted(skip), None, count, _told(invalid, conflicts, batches, convert), merged)


def _sorted(rows: array[int]) -> np.ndarray:
    return np.unique(np.frombuffer(rows, np.int64)) if len(rows) else np.empty(0, np.int64)


def _told(
    invalid: list[tuple[int, str]],
    conflicts: list[tuple[int, int, str]],
    batches: Callable[[], Iterator[Rows]],
    convert: Convert,
) -> list[tuple[int, str]]:
    """The rows left out, in row order, each conflict told with both gold answers: the first row's is read again
    (a conflict is rare, and its first row may lie batches back)."""
    golds: dict[int, str] = {}
    wanted = {first for first, _, _ in conflicts}
    start = 0
    for rows in batches() if wanted else ():
        for index in sorted(wanted & set(range(start, start + len(rows)))):
            golds[index] = convert(rows[index - start], index).answer
        start += len(rows)
        if len(golds) == len(wanted):
            break
    for first, index, gold in conflicts:
        why = f"conflict: gold {golds[first]!r} in row {first}, {gold!r} in row {index}"
        invalid += [(first, why), (index, why)]
    return sorted(invalid)


def _short(error: Exception) -> str:
    if isinstance(error, ValidationError):
        return "; ".join(f"{'.'.join(map(str, e['loc'])) or 'row'}: {e['msg']}" for e in error.errors())
    if isinstance(error, KeyError):
        return f"missing field {error.args[0]!r}"
    return str(error)


def _builtin_splits(source: BuiltinSource, spec: SourceSpec) -> list[Any]:
    configs = (spec.config,) if spec.config else source.configs
    return [hub_dataset(source.hub_id, config, spec.split, spec.revision) for config in configs]


def _split_batches(splits: list[Any]) -> Callable[[], Iterator[Rows]]:
    return lambda: (batch for dataset in splits for batch in dataset_batches(dataset, BATCH_ROWS))


def _rows_state(spec: SourceSpec, splits: list[Any]) -> tuple[object, ...] | None:
    """What a source's rows are known by: a file's path, size, modification time and content digest (a file edited
    in place keeps the first three), or each Hub split's fingerprint (`datasets` gives the same one to the same
    cached data); None where nothing is known."""
    if spec.path is not None:
        path = Path(spec.path).resolve()
        try:
            found = path.stat()
            # Only a regular file is read whole here: /dev/zero or a pipe would never end (file_batches refuses them)
            return (str(path), found.st_size, found.st_mtime_ns, file_digest(path)) if path.is_file() else None
        except OSError:
            return None  # file_batches names the missing or unreadable file
    fingerprints = tuple(getattr(split, "_fingerprint", None) for split in splits)
    return fingerprints if fingerprints and all(fingerprints) else None


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


def load_problems(
    spec: SourceSpec, *, sample: bool = False, limit: int | None = None, cache: SourceCache | None = None
) -> LoadedSource:
    """Problems of one source, in source order, read batch by batch; rows that do not make a valid Problem are
    listed, not dropped. One pass checks every row here, unless `cache` holds that pass's result for these rows in
    this state; each iteration of the result reads the rows again."""
    name = spec.display_name
    splits: list[Any] = []
    if spec.dataset is not None:
        source = BUILTIN_SOURCES[spec.dataset]
        where = "built-in sample " + source.name if sample else source.hub_id
        if sample:
            rows = sample_rows(source.name)
            batches: Callable[[], Iterator[Rows]] = lambda: iter([rows])  # noqa: E731
        else:
            splits = _builtin_splits(source, spec)
            batches = _split_batches(splits)
        needed: Iterable[str] = source.columns
        split = "train" if sample else spec.split  # the samples are training rows

        def convert(row: Mapping[str, Any], _index: int) -> Problem:
            return source.to_problem(row, split)

    else:
        if spec.hub_id is not None:
            where = spec.hub_id
            splits = [hub_dataset(spec.hub_id, spec.config, spec.split, spec.revision)]
            batches = _split_batches(splits)
        else:
            where = str(spec.path)
            batches = lambda: file_batches(Path(where), BATCH_ROWS)  # noqa: E731
        mapping = {"question": "question", "answer": "answer", **spec.fields}
        needed = [mapping["question"], mapping["answer"]]

        def convert(row: Mapping[str, Any], index: int) -> Problem:
            return _mapped_problem(spec, name, row, index)

    state = None if sample else _rows_state(spec, splits)
    key = None if state is None else stamp(state, spec.model_dump_json(), limit)
    selection = cache.selection(key) if cache is not None and key is not None else None
    if selection is None:
        first = next((batch[0] for batch in batches() if batch), None)
        check_columns(first, needed, where)
        selection = _select(batches, convert, limit)
    if not selection.count and selection.invalid:
        index, why = selection.invalid[0]
        raise SourceError(f"{where}: no valid rows; row {index}: {why}")
    checked = selection
    return LoadedSource(
        name,
        checked.count,
        lambda: _read(batches, convert, checked, where),
        checked.invalid,
        checked.merged,
        key,
        checked,
    )


def _read(
    batches: Callable[[], Iterator[Rows]], convert: Convert, selection: Selection, where: str
) -> Iterator[Problem]:
    """The problems the checking pass kept, read again batch by batch."""
    skip = iter(selection.skip.tolist())
    next_skip = next(skip, -1)
    start = 0
    for rows in batches():
        for index, row in enumerate(rows, start):
            if index == selection.end:
                return
            if index == next_skip:
                next_skip = next(skip, -1)
                continue
            try:
                yield convert(row, index)
            except _CONVERT_ERRORS as error:
                raise SourceError(f"{where}: row {index} changed while the build read it: {_short(error)}") from None
        start += len(rows)


def load_sources(
    recipe: Recipe,
    sample: bool = False,
    warn: Callable[[str], None] | None = None,
    cache: SourceCache | None = None,
) -> list[LoadedSource]:
    """Every source of `recipe`, its `limit` applied; rows left out or merged are told to `warn`, one sentence each;
    `cache`: the build directory's record of earlier checking passes (see load_problems)."""
    loaded = []
    for spec in recipe.sources:
        source = load_problems(spec, sample=sample, limit=recipe.limit, cache=cache)
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
