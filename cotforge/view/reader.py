"""What the viewer reads from a build directory, a page at a time: from the store with SQL (read-only, each call a
fresh short read, so a build writing beside it is never blocked and a refresh shows its new answers), or, for a build
without a store (an import, a pull), from its Parquet files with polars' lazy scans. Nothing here loads a corpus.

Rows come back as the stored JSON of a CoTRecord or Rejection (less the chat sent), plus `kind` (record, rejection,
failed) and `subset` (the subset's name in the build)."""

from __future__ import annotations

import json
import re
import sqlite3
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import quote

import polars as pl

from cotforge.corpus import BuildDir, BuildDirError
from cotforge.schemas.recipe import FormatMode
from cotforge.schemas.record import subset_name, with_dataset

PAGE_SIZE = 50
NEIGHBOUR_ROWS = 1000  # the next and previous questions are looked for this far from a question's own rows
RECORD, REJECTION, FAILED = "record", "rejection", "failed"  # the store's kinds (cotforge.builders.store)
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
class Figures:
    """Sums over a subset's answers, from which the overview's statistics are read."""

    records: int = 0
    correct: int = 0
    rationale_chars: int = 0
    steps: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    priced: int = 0
    cost_usd: float = 0.0

    def add(self, other: Figures) -> None:
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))


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
    page: int = 0

    @classmethod
    def from_query(cls, query: Mapping[str, str]) -> Filters:
        values = {name: query.get(name, "").strip() for name in cls.__dataclass_fields__ if name != "page"}
        if values["kind"] not in ("records", "rejections"):
            values["kind"] = "records"
        try:
            page = max(0, int(query.get("page", "0")))
        except ValueError:
            page = 0
        return cls(**values, page=page)

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
        return bool(self.correct or self.text or (self.reason and self.kind == "rejections"))


@dataclass(frozen=True)
class Page:
    rows: list[dict[str, Any]]
    total: int | None  # None when counting would read every row
    more: bool


class Reader:
    """The reading interface the pages use; `open_reader` picks the store or the Parquet files."""

    def __init__(self, build: BuildDir) -> None:
        self.build = build

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

    def chosen(self, filters: Filters) -> list[SubsetInfo]:
        return [s for s in self.catalogue() if filters.picks(s)]


def open_reader(path: Path) -> Reader:
    """The reader of a build directory: its store when it has one, else its Parquet outputs."""
    build = BuildDir(path)
    if build.store_path.exists():
        return StoreReader(build)
    if build.is_build():
        return ParquetReader(build)
    raise ViewError(f"{path}: not a build directory (no {build.store_path.name} and no {build.subsets_dir.name}/)")


# ---- the store ---------------------------------------------------------------------------------------------------

_FIGURES = (
    "count(*), total(json_extract(payload, '$.correct')), total(length(json_extract(payload, '$.rationale'))), "
    "total(json_array_length(payload, '$.steps')), total(json_extract(payload, '$.usage.prompt_tokens')), "
    "total(json_extract(payload, '$.usage.completion_tokens')), count(json_extract(payload, '$.cost_usd')), "
    "total(json_extract(payload, '$.cost_usd'))"
)


def _figures(values: tuple[Any, ...]) -> Figures:
    count, correct, chars, steps, prompt, completion, priced, cost = values
    return Figures(count, int(correct), int(chars), int(steps), int(prompt), int(completion), priced, cost)


def _like(text: str) -> str:
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


class StoreReader(Reader):
    """SQL on the store's tables, read-only. Totals are kept between requests and brought up to date from the rows
    added since (records and rejections are never rewritten; a failed answer may be, by its retry, so failed rows
    are looked at again each time)."""

    def __init__(self, build: BuildDir) -> None:
        super().__init__(build)
        self._lock = threading.Lock()
        self._seen = 0  # the highest rowid summed into _totals
        self._failed: set[int] = set()  # rowids that were failed when last seen
        self._totals = Totals()
        self._by_stored: dict[tuple[str, str], str] = {}
        self._catalogue: list[SubsetInfo] = []
        self._catalogue_at: tuple[int] | None = None
        self._parquet: tuple[int, ParquetReader] | None = None  # the outputs' reader, and the writes they hold

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        """One short read-only transaction: a consistent view that never blocks the build's writer."""
        uri = f"file:{quote(str(self.build.store_path.resolve()))}?mode=ro"
        try:
            db = sqlite3.connect(uri, uri=True, isolation_level=None)
        except sqlite3.Error as error:
            raise ViewError(f"{self.build.store_path}: cannot be read ({error})") from None
        try:
            db.execute("BEGIN")
            yield db
        except sqlite3.DatabaseError as error:
            raise ViewError(f"{self.build.store_path}: not a readable cotforge store ({error})") from None
        finally:
            db.close()

    def catalogue(self) -> list[SubsetInfo]:
        """The subsets and their counts; kept while the store's count of writes (meta 'changes') stays the same."""
        with self._read() as db:
            try:
                changes = db.execute("SELECT value FROM meta WHERE name = 'changes'").fetchone()
            except sqlite3.OperationalError:  # a store from before the count of writes
                changes = None
            if changes is not None and changes == self._catalogue_at:
                return self._catalogue
            counts = db.execute("SELECT kind, dataset, subset, count(*) FROM answers GROUP BY kind, dataset, subset")
            found: dict[tuple[str, str], list[int]] = {}
            for kind, dataset, subset, count in counts.fetchall():
                found.setdefault((dataset, subset), [0, 0])[kind != RECORD] += count
            several = len({dataset for dataset, _ in found}) > 1
            subsets = []
            for (dataset, stored), (records, rejections) in found.items():
                teacher, level, fmt = (
                    db.execute(
                        "SELECT json_extract(payload, '$.teacher'), json_extract(payload, '$.granularity'), "
                        "json_extract(payload, '$.format') FROM answers WHERE kind = ? AND dataset = ? AND subset = ? "
                        "LIMIT 1",
                        (RECORD if records else REJECTION if rejections else FAILED, dataset, stored),
                    ).fetchone()
                    or db.execute(
                        "SELECT json_extract(payload, '$.teacher'), json_extract(payload, '$.granularity'), "
                        "json_extract(payload, '$.format') FROM answers WHERE dataset = ? AND subset = ? LIMIT 1",
                        (dataset, stored),
                    ).fetchone()
                )
                name = with_dataset(stored, dataset if several else None)
                subsets.append(SubsetInfo(name, dataset, stored, teacher, level, fmt, records, rejections))
        self._by_stored = {(s.dataset, s.stored): s.name for s in subsets}
        self._catalogue, self._catalogue_at = sorted(subsets, key=lambda s: s.name), changes
        return self._catalogue

    def _exported(self, db: sqlite3.Connection) -> ParquetReader | None:
        """The Parquet outputs, when they hold exactly what the store holds (the build wrote them and nothing was
        stored since): they answer column queries much faster than the stored JSON."""
        try:
            changes, exported = db.execute(
                "SELECT (SELECT value FROM meta WHERE name = 'changes'), "
                "(SELECT value FROM meta WHERE name = 'exported')"
            ).fetchone()
        except sqlite3.OperationalError:  # a store from before the export mark
            return None
        if changes != exported or not self.build.is_build():
            return None
        if self._parquet is None or self._parquet[0] != changes:
            self._parquet = changes, ParquetReader(self.build)
        return self._parquet[1]

    def totals(self) -> Totals:
        with self._lock:
            catalogue = self.catalogue()
            with self._read() as db:
                top = db.execute("SELECT max(rowid) FROM answers").fetchone()[0] or 0
                exported = self._exported(db) if not self._seen else None
                if exported is not None:  # start from the outputs' sums; later rows are added as they come
                    self._totals = exported.totals()
                    self._failed = {r for (r,) in db.execute("SELECT rowid FROM answers WHERE kind = 'failed'")}
                    self._seen = top
                self._sum(db, "rowid > ? AND rowid <= ? AND kind != 'failed'", (self._seen, top))
                self._failed |= {
                    rowid
                    for (rowid,) in db.execute(
                        "SELECT rowid FROM answers WHERE rowid > ? AND rowid <= ? AND kind = 'failed'",
                        (self._seen, top),
                    )
                }
                if self._failed:  # retried since: now a record or a rejection
                    marks = ",".join("?" * len(self._failed))
                    settled = {
                        rowid
                        for (rowid,) in db.execute(
                            f"SELECT rowid FROM answers WHERE rowid IN ({marks}) AND kind != 'failed'",
                            tuple(self._failed),
                        )
                    }
                    if settled:
                        self._sum(db, f"rowid IN ({','.join('?' * len(settled))})", tuple(settled))
                        self._failed -= settled
                self._seen = top
                failed = db.execute(
                    "SELECT json_extract(payload, '$.detail'), count(*) FROM answers WHERE kind = 'failed' GROUP BY 1"
                ).fetchall()
            totals = self._totals
            return Totals(
                subsets={s.name: totals.subsets.get(s.name, Figures()) for s in catalogue if s.records},
                rejected=dict(sorted(totals.rejected.items())),
                failed={detail or "": count for detail, count in failed},
                rejected_figures=totals.rejected_figures,
            )

    def _sum(self, db: sqlite3.Connection, where: str, args: tuple[Any, ...]) -> None:
        rows = db.execute(
            f"SELECT kind, dataset, subset, CASE kind WHEN 'record' THEN NULL ELSE json_extract(payload, '$.reason') "
            f"END, {_FIGURES} FROM answers WHERE {where} GROUP BY 1, 2, 3, 4",
            args,
        )
        for kind, dataset, stored, reason, *values in rows.fetchall():
            figures = _figures(tuple(values))
            if kind == RECORD:
                name = self._by_stored.get((dataset, stored), stored)
                self._totals.subsets.setdefault(name, Figures()).add(figures)
            else:
                self._totals.rejected[reason] = self._totals.rejected.get(reason, 0) + figures.records
                self._totals.rejected_figures.add(replace(figures, correct=0))

    def _where(self, filters: Filters, chosen: list[SubsetInfo]) -> tuple[str, list[Any]]:
        where = ["kind = 'record'" if filters.kind == "records" else "kind IN ('rejection', 'failed')"]
        args: list[Any] = []
        if len(chosen) < len(self.catalogue()):
            pairs = [(s.dataset, s.stored) for s in chosen] or [("", "")]
            where.append(f"(dataset, subset) IN (VALUES {','.join(['(?, ?)'] * len(pairs))})")
            args += [value for pair in pairs for value in pair]
        if filters.correct and filters.kind == "records":
            where.append("json_extract(payload, '$.correct') = ?")
            args.append(1 if filters.correct == "yes" else 0)
        if filters.reason and filters.kind == "rejections":
            where.append("json_extract(payload, '$.reason') = ?")
            args.append(filters.reason)
        if filters.text:
            pattern = _like(filters.text)
            fields = SEARCHED[filters.kind]
            exact = " OR ".join(f"json_extract(payload, '$.{name}') LIKE ? ESCAPE '\\'" for name in fields)
            # The payload holds the text as JSON spells it: a cheap first pass unless escaping would change it.
            if not any(c in filters.text for c in '"\\') and filters.text.isprintable():
                where.append("payload LIKE ? ESCAPE '\\'")
                args.append(pattern)
            where.append(f"({exact})")
            args += [pattern] * len(fields)
        return " AND ".join(where), args

    def page(self, filters: Filters, size: int = PAGE_SIZE) -> Page:
        chosen = self.chosen(filters)
        where, args = self._where(filters, chosen)
        with self._read() as db:
            exported = self._exported(db) if filters.text else None
            if exported is not None:  # a text search reads every row: the columns do it several times faster
                return exported.page(filters, size)
            found = db.execute(
                f"SELECT kind, dataset, subset, payload FROM answers WHERE {where} "
                "ORDER BY dataset, subset, rowid LIMIT ? OFFSET ?",
                (*args, size + 1, filters.page * size),
            ).fetchall()
        return Page([self._row(*row) for row in found[:size]], _total(filters, chosen), len(found) > size)

    def _row(self, kind: str, dataset: str, stored: str, payload: str) -> dict[str, Any]:
        if not self._by_stored:
            self.catalogue()
        return {**json.loads(payload), "kind": kind, "subset": self._by_stored.get((dataset, stored), stored)}

    @staticmethod
    def _needle(problem_id: str) -> str:
        return '"problem_id":' + json.dumps(problem_id, ensure_ascii=False)

    def question(self, problem_id: str) -> list[dict[str, Any]]:
        self.catalogue()
        with self._read() as db:
            exported = self._exported(db)
            if exported is not None:
                return exported.question(problem_id)
            found = db.execute(
                "SELECT kind, dataset, subset, payload FROM answers WHERE instr(payload, ?) > 0 "
                "AND json_extract(payload, '$.problem_id') = ? ORDER BY rowid",
                (self._needle(problem_id), problem_id),
            ).fetchall()
        return [self._row(*row) for row in found]

    def neighbours(self, problem_id: str) -> tuple[str | None, str | None]:
        needle = self._needle(problem_id)
        with self._read() as db:
            exported = self._exported(db)
            if exported is not None:
                return exported.neighbours(problem_id)
            for info in self.catalogue():
                if not info.records:
                    continue
                span = db.execute(
                    "SELECT min(rowid), max(rowid) FROM answers WHERE kind = 'record' AND dataset = ? AND subset = ? "
                    "AND instr(payload, ?) > 0",
                    (info.dataset, info.stored, needle),
                ).fetchone()
                if span[0] is None:
                    continue
                step = (
                    "SELECT json_extract(payload, '$.problem_id') FROM answers WHERE kind = 'record' AND dataset = ? "
                    "AND subset = ? AND rowid {} ? AND instr(payload, ?) = 0 ORDER BY rowid {} LIMIT 1"
                )
                around = []
                for op, order, rowid in (("<", "DESC", span[0]), (">", "ASC", span[1])):
                    row = db.execute(step.format(op, order), (info.dataset, info.stored, rowid, needle)).fetchone()
                    around.append(row[0] if row else None)
                return around[0], around[1]
        return None, None

    def first_question(self) -> str | None:
        with self._read() as db:
            row = db.execute(
                "SELECT json_extract(payload, '$.problem_id') FROM answers WHERE kind = 'record' "
                "ORDER BY dataset, subset, rowid LIMIT 1"
            ).fetchone()
        return row[0] if row else None

    def find_questions(self, text: str, limit: int = 20) -> list[tuple[str, str]]:
        with self._read() as db:
            exported = self._exported(db)
            if exported is not None:
                return exported.find_questions(text, limit)
            pattern = _like(text)
            return db.execute(
                "SELECT json_extract(payload, '$.problem_id') AS id, min(json_extract(payload, '$.question')) "
                "FROM answers WHERE kind = 'record' AND payload LIKE ? ESCAPE '\\' "
                "AND json_extract(payload, '$.question') LIKE ? ESCAPE '\\' GROUP BY id ORDER BY min(rowid) LIMIT ?",
                (pattern, pattern, limit),
            ).fetchall()


# ---- the Parquet outputs (no store) ------------------------------------------------------------------------------


class ParquetReader(Reader):
    """Lazy polars scans of subsets/*.parquet and rejections.parquet, each query reading only its columns and rows
    (whole-file ones on the streaming engine, so memory stays flat); a build without a store does not change while
    it is shown, so its catalogue and totals are read once."""

    def __init__(self, build: BuildDir) -> None:
        super().__init__(build)
        try:
            self._files = build.subset_files()
        except BuildDirError as error:
            raise ViewError(str(error)) from None
        self._catalogue: list[SubsetInfo] | None = None
        self._totals: Totals | None = None

    def _records(self, names: list[str] | None = None) -> pl.LazyFrame | None:
        files = [str(self._files[n]) for n in (names if names is not None else self._files) if n in self._files]
        if not files:
            return None
        return pl.scan_parquet(files, include_file_paths="file").with_columns(
            pl.col("file").str.extract(r"([^/\\]+)\.parquet$").alias("subset")
        )

    def _rejections(self) -> pl.LazyFrame | None:
        path = self.build.rejections_path
        if not path.exists():
            return None
        several = len({s.dataset for s in self.catalogue()}) > 1
        frame = pl.scan_parquet(path)
        return frame.with_columns(
            pl.struct("teacher", "granularity", "format", "dataset", "format_mode")
            .map_elements(lambda r: _subset_of(r, several), return_dtype=pl.Utf8)
            .alias("subset"),
            pl.when(pl.col("reason") == "api_error").then(pl.lit(FAILED)).otherwise(pl.lit(REJECTION)).alias("kind"),
        )

    def catalogue(self) -> list[SubsetInfo]:
        if self._catalogue is not None:
            return self._catalogue
        subsets: dict[str, SubsetInfo] = {}
        keys = ["subset", "dataset", "teacher", "granularity", "format"]
        records = self._records()
        if records is not None:
            for row in (
                records.group_by(keys).agg(pl.len().alias("n")).collect(engine="streaming").iter_rows(named=True)
            ):
                subsets[row["subset"]] = SubsetInfo(
                    row["subset"], row["dataset"], row["subset"], row["teacher"], row["granularity"], row["format"],
                    records=row["n"],
                )  # fmt: skip
        datasets = {s.dataset for s in subsets.values()}
        rejections = self.build.rejections_path
        if rejections.exists():
            grouped = pl.scan_parquet(rejections).group_by("dataset", "teacher", "granularity", "format", "format_mode")
            rows = grouped.agg(pl.len().alias("n")).collect(engine="streaming").to_dicts()
            several = len(datasets | {r["dataset"] for r in rows}) > 1
            for row in rows:
                name = _subset_of(row, several)
                known = subsets.get(name) or SubsetInfo(
                    name, row["dataset"], name, row["teacher"], row["granularity"], row["format"]
                )
                subsets[name] = replace(known, rejections=known.rejections + row["n"])
        self._catalogue = sorted(subsets.values(), key=lambda s: s.name)
        return self._catalogue

    def totals(self) -> Totals:
        if self._totals is not None:
            return self._totals
        totals = Totals()
        records = self._records()
        if records is not None:
            sums = records.group_by("subset").agg(
                pl.len().alias("records"),
                pl.col("correct").sum().alias("correct"),
                pl.col("rationale").str.len_chars().sum().alias("rationale_chars"),
                pl.col("steps").list.len().sum().alias("steps"),
                pl.col("usage").struct.field("prompt_tokens").sum().alias("prompt_tokens"),
                pl.col("usage").struct.field("completion_tokens").sum().alias("completion_tokens"),
                pl.col("cost_usd").count().alias("priced"),
                pl.col("cost_usd").sum().alias("cost_usd"),
            )
            for row in sums.collect(engine="streaming").iter_rows(named=True):
                name = row.pop("subset")
                totals.subsets[name] = Figures(**{k: v or 0 for k, v in row.items()})
        if self.build.rejections_path.exists():
            frame = pl.scan_parquet(self.build.rejections_path)
            sums = frame.group_by("reason", "detail").agg(
                pl.len().alias("n"),
                pl.col("usage").struct.field("prompt_tokens").sum().alias("prompt_tokens"),
                pl.col("usage").struct.field("completion_tokens").sum().alias("completion_tokens"),
                pl.col("cost_usd").count().alias("priced"),
                pl.col("cost_usd").sum().alias("cost_usd"),
            )
            for row in sums.collect(engine="streaming").iter_rows(named=True):
                if row["reason"] == "api_error":
                    totals.failed[row["detail"]] = totals.failed.get(row["detail"], 0) + row["n"]
                    continue
                totals.rejected[row["reason"]] = totals.rejected.get(row["reason"], 0) + row["n"]
                totals.rejected_figures.add(
                    Figures(
                        records=row["n"],
                        **{k: row[k] or 0 for k in ("prompt_tokens", "completion_tokens", "priced", "cost_usd")},
                    )
                )
        totals.subsets = dict(sorted(totals.subsets.items()))
        self._totals = totals
        return totals

    def _filtered(self, filters: Filters, chosen: list[SubsetInfo]) -> pl.LazyFrame | None:
        names = [s.name for s in chosen]
        if filters.kind == "records":
            frame = self._records(names)
            if frame is None:
                return None
            frame = frame.select(*ROW_FIELDS, "subset").with_columns(pl.lit(RECORD).alias("kind"))
            if filters.correct:
                frame = frame.filter(pl.col("correct") == (filters.correct == "yes"))
        else:
            frame = self._rejections()
            if frame is None:
                return None
            frame = frame.select(*REJECTION_FIELDS, "subset", "kind").filter(pl.col("subset").is_in(names))
            if filters.reason:
                frame = frame.filter(pl.col("reason") == filters.reason)
        if filters.text:
            needle = "(?i)" + re.escape(filters.text)  # any case, without lowercasing every row first
            frame = frame.filter(pl.any_horizontal(pl.col(c).str.contains(needle) for c in SEARCHED[filters.kind]))
        return frame

    def page(self, filters: Filters, size: int = PAGE_SIZE) -> Page:
        chosen = self.chosen(filters)
        frame = self._filtered(filters, chosen)
        if frame is None:
            return Page([], 0, False)
        rows = frame.slice(filters.page * size, size + 1).collect().to_dicts()
        return Page(rows[:size], _total(filters, chosen), len(rows) > size)

    def question(self, problem_id: str) -> list[dict[str, Any]]:
        found = []
        records = self._records()
        if records is not None:
            frame = records.filter(pl.col("problem_id") == problem_id).select(*ROW_FIELDS, "subset")
            found += [{**row, "kind": RECORD} for row in frame.collect(engine="streaming").to_dicts()]
        rejections = self._rejections()
        if rejections is not None:
            frame = rejections.filter(pl.col("problem_id") == problem_id)
            found += frame.select(*REJECTION_FIELDS, "subset", "kind").collect(engine="streaming").to_dicts()
        return found

    def neighbours(self, problem_id: str) -> tuple[str | None, str | None]:
        for info in self.catalogue():
            frame = self._records([info.name])
            if frame is None:
                continue
            ids = frame.select("problem_id").with_row_index("at")
            span = ids.filter(pl.col("problem_id") == problem_id).select(
                pl.min("at").alias("lo"), pl.max("at").alias("hi")
            )
            span = span.collect(engine="streaming").row(0)
            if span[0] is None:
                continue
            lo, hi = span
            start = max(0, lo - NEIGHBOUR_ROWS)
            before = frame.select("problem_id").slice(start, lo - start).collect()["problem_id"].to_list()[::-1]
            after = frame.select("problem_id").slice(hi + 1, NEIGHBOUR_ROWS).collect()["problem_id"].to_list()
            return next((p for p in before if p != problem_id), None), next((p for p in after if p != problem_id), None)
        return None, None

    def first_question(self) -> str | None:
        frame = self._records([s.name for s in self.catalogue() if s.records][:1])
        return None if frame is None else frame.select(pl.first("problem_id")).collect(engine="streaming").item()

    def find_questions(self, text: str, limit: int = 20) -> list[tuple[str, str]]:
        frame = self._records()
        if frame is None:
            return []
        questions = frame.select("problem_id", "question")
        holds = pl.col("question").str.to_lowercase().str.contains(text.lower(), literal=True)
        return (
            questions.filter(holds)
            .unique("problem_id", maintain_order=True)
            .head(limit)
            .collect(engine="streaming")
            .rows()
        )


def _total(filters: Filters, chosen: list[SubsetInfo]) -> int | None:
    """The rows the filters pick, from the counts; None when only reading every row would tell."""
    if filters.scans:
        return None
    return sum(s.records if filters.kind == "records" else s.rejections for s in chosen)


def _subset_of(row: Mapping[str, Any], several: bool) -> str:
    native = row["format_mode"] == FormatMode.native.value
    dataset = row["dataset"] if several else None
    return subset_name(row["teacher"], row["granularity"], row["format"], dataset, native)
