"""The store of a build, read through the store's own read-only queries (cotforge.builders.store_queries): each
call a fresh short transaction, so a build writing beside it is never blocked and a refresh shows its new answers."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

from cotforge.builders.store import RECORD
from cotforge.builders.store_queries import (
    AnswerQuery,
    Figures,
    StoredAnswer,
    StoreReadError,
    StoreSnapshot,
    SubsetSums,
    read_only,
)
from cotforge.corpus import BuildDir
from cotforge.schemas.record import with_dataset
from cotforge.view.parquet import ParquetReader
from cotforge.view.reader import (
    PAGE_SIZE,
    SEARCHED,
    Filters,
    Page,
    Reader,
    SubsetInfo,
    Totals,
    ViewError,
    total_of,
)


class StoreReader(Reader):
    """The store's answers, read-only. Totals are kept between requests and brought up to date from the rows
    added since (records and rejections are never rewritten; a failed answer may be, by its retry, so failed rows
    are looked at again each time)."""

    source = "store (live while a build writes)"

    def __init__(self, build: BuildDir) -> None:
        super().__init__(build)
        self._lock = threading.Lock()
        self._seen = 0  # the highest rowid summed into _totals
        self._failed: set[int] = set()  # rowids that were failed when last seen
        self._totals = Totals()
        self._by_stored: dict[tuple[str, str], str] = {}
        self._catalogue: list[SubsetInfo] = []
        self._catalogue_at: int | None = None
        self._parquet: tuple[int, ParquetReader] | None = None  # the outputs' reader, and the writes they hold

    @contextmanager
    def _read(self) -> Iterator[StoreSnapshot]:
        """One short read-only transaction: a consistent view that never blocks the build's writer."""
        try:
            with read_only(self.build.store_path) as store:
                yield store
        except StoreReadError as error:
            raise ViewError(str(error)) from None

    def catalogue(self) -> list[SubsetInfo]:
        """The subsets and their counts; kept while the store's count of writes (meta 'changes') stays the same."""
        with self._read() as store:
            changes = store.changes()
            if changes is not None and changes == self._catalogue_at:
                return self._catalogue
            found = store.subset_counts()
            several = len({counts.dataset for counts in found}) > 1
            subsets = []
            for counts in found:
                shape = store.subset_shape(counts)
                name = with_dataset(counts.subset, counts.dataset if several else None)
                subsets.append(
                    SubsetInfo(
                        name,
                        counts.dataset,
                        counts.subset,
                        shape.teacher,
                        shape.granularity,
                        shape.format,
                        counts.records,
                        counts.rejections,
                    )
                )
        self._by_stored = {(s.dataset, s.stored): s.name for s in subsets}
        self._catalogue, self._catalogue_at = sorted(subsets, key=lambda s: s.name), changes
        return self._catalogue

    def _exported(self, store: StoreSnapshot) -> ParquetReader | None:
        """The Parquet outputs, when they hold exactly what the store holds (the build wrote them and nothing was
        stored since): they answer column queries much faster than the stored JSON."""
        marks = store.export_marks()
        if marks is None or marks[0] != marks[1] or not self.build.is_build():
            return None
        changes = marks[0]
        if self._parquet is None or self._parquet[0] != changes:
            self._parquet = changes, ParquetReader(self.build)
        return self._parquet[1]

    def totals(self) -> Totals:
        with self._lock:
            catalogue = self.catalogue()
            with self._read() as store:
                top = store.last_rowid()
                exported = self._exported(store) if not self._seen else None
                if exported is not None:  # start from the outputs' sums; later rows are added as they come
                    self._totals = exported.totals()
                    self._failed = store.failed_rowids(upto=top)
                    self._seen = top
                self._sum(store.sums_between(self._seen, top))
                self._failed |= store.failed_rowids(self._seen, top)
                if self._failed:  # retried since: now a record or a rejection
                    settled = store.settled(self._failed)
                    if settled:
                        self._sum(store.sums_of(settled))
                        self._failed -= settled
                self._seen = top
                failed = store.failed_details()
            totals = self._totals
            return Totals(
                subsets={s.name: totals.subsets.get(s.name, Figures()) for s in catalogue if s.records},
                rejected=dict(sorted(totals.rejected.items())),
                failed=failed,
                rejected_figures=totals.rejected_figures,
            )

    def _sum(self, found: list[SubsetSums]) -> None:
        for sums in found:
            if sums.kind == RECORD:
                name = self._by_stored.get((sums.dataset, sums.subset), sums.subset)
                self._totals.subsets.setdefault(name, Figures()).add(sums.figures)
            else:
                reason = sums.reason or ""
                self._totals.rejected[reason] = self._totals.rejected.get(reason, 0) + sums.figures.records
                self._totals.rejected_figures.add(replace(sums.figures, correct=0))

    def _query(self, filters: Filters, chosen: list[SubsetInfo]) -> AnswerQuery:
        return AnswerQuery(
            rejections=filters.kind != "records",
            subsets=None if len(chosen) == len(self.catalogue()) else tuple((s.dataset, s.stored) for s in chosen),
            correct=None if not filters.correct else filters.correct == "yes",
            reason=filters.reason or None,
            text=filters.text,
            searched=SEARCHED[filters.kind],
            keys=self.judged_keys(filters),
        )

    def page(self, filters: Filters, size: int = PAGE_SIZE) -> Page:
        chosen = self.chosen(filters)
        query = self._query(filters, chosen)
        with self._read() as store:
            exported = self._exported(store) if filters.text else None
            if exported is not None:  # a text search reads every row: the columns do it several times faster
                return exported.page(filters, size)
            found = store.answers(query, size + 1, filters.page * size)
        return Page([self._row(row) for row in found[:size]], total_of(filters, chosen), len(found) > size)

    def count(self, filters: Filters) -> int:
        query = self._query(filters, self.chosen(filters))
        with self._read() as store:
            exported = self._exported(store) if filters.text else None
            if exported is not None:
                return exported.count(filters)
            return store.count(query)

    def _row(self, answer: StoredAnswer) -> dict[str, Any]:
        if not self._by_stored:
            self.catalogue()
        subset = self._by_stored.get((answer.dataset, answer.subset), answer.subset)
        return {**answer.fields(), "kind": answer.kind, "subset": subset}

    def question(self, problem_id: str) -> list[dict[str, Any]]:
        self.catalogue()
        with self._read() as store:
            exported = self._exported(store)
            if exported is not None:
                return exported.question(problem_id)
            found = store.answers_to(problem_id)
        return [self._row(row) for row in found]

    def neighbours(self, problem_id: str) -> tuple[str | None, str | None]:
        with self._read() as store:
            exported = self._exported(store)
            if exported is not None:
                return exported.neighbours(problem_id)
            for info in self.catalogue():
                around = store.neighbours(info.dataset, info.stored, problem_id) if info.records else None
                if around is not None:
                    return around
        return None, None

    def first_question(self) -> str | None:
        with self._read() as store:
            return store.first_question()

    def find_questions(self, text: str, limit: int = 20) -> list[tuple[str, str]]:
        with self._read() as store:
            exported = self._exported(store)
            if exported is not None:
                return exported.find_questions(text, limit)
            return list(store.find_questions(text, limit))


def open_reader(path: Path) -> Reader:
    """The reader of a build directory: its store when it has one, else its Parquet outputs."""
    build = BuildDir(path)
    if build.store_path.exists():
        return StoreReader(build)
    if build.is_build():
        return ParquetReader(build)
    raise ViewError(f"{path}: not a build directory (no {build.store_path.name} and no {build.subsets_dir.name}/)")
