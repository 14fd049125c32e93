"""The Parquet outputs of a build, read with lazy polars scans: a build without a store (an import, a pull), and a
finished one's column queries."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import polars as pl

from cotforge.builders.store import FAILED, RECORD, REJECTION
from cotforge.builders.store_queries import Figures
from cotforge.corpus import BuildDir, BuildDirError
from cotforge.schemas.recipe import FormatMode
from cotforge.schemas.record import subset_name
from cotforge.view.reader import (
    NEIGHBOUR_ROWS,
    PAGE_SIZE,
    REJECTION_FIELDS,
    ROW_FIELDS,
    SEARCHED,
    Filters,
    Page,
    Reader,
    SubsetInfo,
    Totals,
    ViewError,
    total_of,
)


class ParquetReader(Reader):
    """Lazy polars scans of subsets/*.parquet and rejections.parquet, each query reading only its columns and rows
    (whole-file ones on the streaming engine, so memory stays flat); a build without a store does not change while
    it is shown, so its catalogue and totals are read once."""

    source = "Parquet outputs"

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
            keys = self.judged_keys(filters)
            if keys is not None:
                frame = frame.filter(pl.col("key").is_in(pl.Series(keys, dtype=pl.Utf8).implode()))
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
        return Page(rows[:size], total_of(filters, chosen), len(rows) > size)

    def count(self, filters: Filters) -> int:
        frame = self._filtered(filters, self.chosen(filters))
        return 0 if frame is None else frame.select(pl.len()).collect(engine="streaming").item()

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


def _subset_of(row: Mapping[str, Any], several: bool) -> str:
    native = row["format_mode"] == FormatMode.native.value
    dataset = row["dataset"] if several else None
    return subset_name(row["teacher"], row["granularity"], row["format"], dataset, native)
