"""What the viewer reads from a build directory, a page at a time, never the whole corpus: `Reader`, which the store
(store.py: SQL, read-only, live while a build writes) and the Parquet outputs (parquet.py: lazy polars scans) both
answer, the filters of the browse page, and what comes back.

Rows come back as the stored JSON of a CoTRecord or Rejection (less the chat sent), plus `kind` (record, rejection,
failed) and `subset` (the subset's name in the build)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from cotforge.builders.store_queries import Figures
from cotforge.corpus import BuildDir, BuildDirError
from cotforge.view.judged import JudgeCondition, Verdicts, VerdictSource

PAGE_SIZE = 50
# An absolute path (POSIX or Windows) not inside a word: what an error's text may name outside the folder shown.
_ABSOLUTE_PATH = re.compile(r"(?<![\w.])(?:[A-Za-z]:)?[\\/][^\s'\"]*")
# The highest page number taken from a query: its rows' offset still fits SQLite's and polars' 64-bit integers.
MAX_PAGE = (2**63 - 1) // PAGE_SIZE - 1
NEIGHBOUR_ROWS = 1000  # the next and previous questions are looked for this far from a question's own rows
# What a page shows of a row: never the chat sent or the training views, which only repeat it.
ROW_FIELDS = (
    "key",
    "problem_id",
    "dataset",
    "teacher",
    "granularity",
    "format",
    "format_mode",
    "sample_index",
    "finish_reason",
    "usage",
    "reasoning_tokens",
    "cost_usd",
    "question",
    "gold_answer",
    "rationale",
    "reasoning",
    "steps",
    "predicted_answer",
    "answer_source",
    "correct",
)
REJECTION_FIELDS = (*ROW_FIELDS[:12], "reason", "detail", "raw_response", "raw_reasoning")
# What the browse page's text search looks in (a rejection keeps no question).
SEARCHED = {"records": ("question", "problem_id", "rationale"), "rejections": ("problem_id", "detail", "raw_response")}


class ViewError(ValueError):
    """A folder the viewer cannot show: the message names it and why."""


@dataclass(frozen=True)
class SubsetInfo:
    """One subset of the build: its name, what it holds, and its answers by kind."""

    name: str
    dataset: str
    stored: str  # the store's subset column (without the data set)
    teacher: str
    granularity: int | None
    format: str
    records: int = 0
    rejections: int = 0  # rejected or failed


@dataclass
class Totals:
    """The build as its stored answers say it is now: accepted, rejected by reason, failed by detail, and sums per
    subset (tokens and cost of rejected answers are in `rejected_figures`)."""

    subsets: dict[str, Figures] = field(default_factory=dict)
    rejected: dict[str, int] = field(default_factory=dict)
    failed: dict[str, int] = field(default_factory=dict)
    rejected_figures: Figures = field(default_factory=Figures)

    @property
    def accepted(self) -> int:
        return sum(f.records for f in self.subsets.values())


@dataclass(frozen=True)
class Filters:
    """What the browse page asks for; every field as the query string gives it ("" for any)."""

    kind: str = "records"  # or "rejections"
    subset: str = ""
    dataset: str = ""
    level: str = ""  # a level, or "none" for rationales without one
    format: str = ""
    teacher: str = ""
    correct: str = ""  # "yes" or "no"
    reason: str = ""
    text: str = ""
    judge: str = ""  # records whose judge score compares so, e.g. "faithful <= 2"
    page: int = 0

    @classmethod
    def from_query(cls, query: Mapping[str, str]) -> Filters:
        values = {name: query.get(name, "").strip() for name in cls.__dataclass_fields__ if name != "page"}
        if values["kind"] not in ("records", "rejections"):
            values["kind"] = "records"
        return cls(**values, page=page_number(query.get("page", "0")))

    def query(self, **changes: Any) -> dict[str, str]:
        """The non-empty fields as a query string's parameters (with `changes` applied)."""
        chosen = replace(self, **changes)
        return {name: str(getattr(chosen, name)) for name in self.__dataclass_fields__ if getattr(chosen, name)}

    def picks(self, subset: SubsetInfo) -> bool:
        level = "none" if subset.granularity is None else str(subset.granularity)
        wanted = {"subset": subset.name, "dataset": subset.dataset, "level": level}
        wanted |= {"format": subset.format, "teacher": subset.teacher}
        return all(getattr(self, name) in ("", value) for name, value in wanted.items())

    @property
    def scans(self) -> bool:
        """Whether the filters read the rows themselves (so the total is not known from the counts)."""
        return bool(self.correct or self.text or self.judged or (self.reason and self.kind == "rejections"))

    @property
    def judged(self) -> JudgeCondition | None:
        """The judge filter, on records; None when there is none or it is not RUBRIC OP SCORE (the page says so)."""
        if not self.judge or self.kind != "records":
            return None
        try:
            return JudgeCondition.parse(self.judge)
        except ValueError:
            return None


@dataclass(frozen=True)
class Page:
    rows: list[dict[str, Any]]
    total: int | None  # None when counting would read every row
    more: bool


class Reader:
    """The reading interface the pages use; `open_reader` (store.py) picks the store or the Parquet files."""

    source = ""  # where the rows come from, as the overview says it

    def __init__(self, build: BuildDir) -> None:
        self.build = build
        self._verdicts = VerdictSource(build)

    def verdicts(self) -> Verdicts:
        """The judge's latest score and reason per record and rubric (none for a build never judged)."""
        try:
            return self._verdicts.current()
        except BuildDirError as error:
            raise ViewError(str(error)) from None

    def judged_keys(self, filters: Filters) -> tuple[str, ...] | None:
        """The keys of the records the judge filter keeps; None when there is no judge filter."""
        condition = filters.judged
        return None if condition is None else self.verdicts().keys_where(condition)

    def catalogue(self) -> list[SubsetInfo]:
        raise NotImplementedError

    def totals(self) -> Totals:
        raise NotImplementedError

    def page(self, filters: Filters, size: int = PAGE_SIZE) -> Page:
        raise NotImplementedError

    def question(self, problem_id: str) -> list[dict[str, Any]]:
        """Every answer to one problem, records and rejections."""
        raise NotImplementedError

    def neighbours(self, problem_id: str) -> tuple[str | None, str | None]:
        """The problems before and after this one, in the order of the first subset that holds it."""
        raise NotImplementedError

    def first_question(self) -> str | None:
        raise NotImplementedError

    def find_questions(self, text: str, limit: int = 20) -> list[tuple[str, str]]:
        """(problem id, question) of the problems whose question holds `text` (any case)."""
        raise NotImplementedError

    def count(self, filters: Filters) -> int:
        """The rows the filters pick, counted by reading them."""
        raise NotImplementedError

    def chosen(self, filters: Filters) -> list[SubsetInfo]:
        return [s for s in self.catalogue() if filters.picks(s)]

    def clamped_page(self, filters: Filters) -> tuple[Filters, Page]:
        """The page asked for, or the last one when its number lies past the end (a stale link, one typed by hand):
        the filters as shown, and the page. Rows are counted only for a page past the end whose total is unknown,
        which reads them all anyway."""
        total = total_of(filters, self.chosen(filters))
        if total is not None:
            filters = replace(filters, page=min(filters.page, last_page(total)))
        found = self.page(filters)
        if found.rows or filters.page == 0 or total is not None:
            return filters, found
        filters = replace(filters, page=last_page(self.count(filters)))
        return filters, self.page(filters)


def page_number(value: str) -> int:
    """A query's page number: 0 for anything but a whole number, at most MAX_PAGE."""
    try:
        return min(max(0, int(value)), MAX_PAGE)
    except ValueError:
        return 0


def last_page(rows: int) -> int:
    return max(0, rows - 1) // PAGE_SIZE


def total_of(filters: Filters, chosen: list[SubsetInfo]) -> int | None:
    """The rows the filters pick, from the counts; None when only reading every row would tell."""
    if filters.scans:
        return None
    return sum(s.records if filters.kind == "records" else s.rejections for s in chosen)


def within_folder(message: str, folder: Path) -> str:
    """`message` naming no path outside the folder shown: the folder's own path becomes its name, any other absolute
    path is masked (an error raised while reading a file may name any)."""
    for root in sorted({str(folder.resolve()), str(folder.absolute())}, key=len, reverse=True):
        message = message.replace(root, folder.name)
    return _ABSOLUTE_PATH.sub("(a path outside the folder)", message)
