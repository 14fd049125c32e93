"""Where a source's rows come from: a local file, a Hub data set or a built-in sample, read a batch at a time
(loading.py turns them into Problems)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from importlib import resources
from pathlib import Path
from typing import Any

SAMPLE_PACKAGE = "cotforge.recipes.samples"


class SourceError(ValueError):
    """A source that cannot be read at all: missing file, missing columns, unknown format."""


# Rows read, checked and turned into problems at a time: a source of millions is never held whole.
BATCH_ROWS = 10_000
Rows = list[dict[str, Any]]


def sample_rows(dataset: str) -> list[dict[str, Any]]:
    """The ~30 real rows shipped for a built-in data set, in its Hub schema."""
    text = resources.files(SAMPLE_PACKAGE).joinpath(f"{dataset}.jsonl").read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def hub_dataset(hub_id: str, config: str | None, split: str, revision: str | None) -> Any:
    """The split as `datasets` keeps it: Arrow tables mapped from disk, read in batches by dataset_batches."""
    import datasets

    try:
        return datasets.load_dataset(hub_id, config, split=split, revision=revision)
    except Exception as error:  # datasets raises many kinds; the user needs the id and the reason
        where = f"{hub_id}" + (f" (config {config})" if config else "") + f", split {split}"
        raise SourceError(f"could not load {where}: {error}") from error


def dataset_batches(dataset: Any, size: int) -> Iterator[Rows]:
    for columns in dataset.iter(batch_size=size):
        yield [dict(zip(columns, values, strict=True)) for values in zip(*columns.values(), strict=True)]


def file_batches(path: Path, size: int | None = None) -> Iterator[Rows]:
    """The rows of a local .jsonl, .json, .parquet or .csv file, `size` (default BATCH_ROWS) at a time (a .json
    list is one batch; a CSV block is about a megabyte); SourceError names the file and what is wrong, and for JSON
    lines the line."""
    import pyarrow as pa

    size = size or BATCH_ROWS

    if not path.is_file():
        raise SourceError(f"{path}: no such file")
    suffix = path.suffix.lower()
    if suffix not in (".jsonl", ".ndjson", ".json", ".parquet", ".csv"):
        raise SourceError(f"{path}: unsupported file type {suffix!r} (use .jsonl, .json, .parquet or .csv)")
    try:
        if suffix in (".jsonl", ".ndjson"):
            yield from _json_line_batches(path, size)
        elif suffix == ".json":
            data = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(data, list) or not all(isinstance(row, dict) for row in data):
                raise SourceError(f"{path}: a .json source must hold a list of objects")
            yield data
        else:
            for batch in _arrow_batches(path, suffix, size):
                for start in range(0, batch.num_rows, size):
                    yield batch.slice(start, size).to_pylist()
    except UnicodeDecodeError:
        raise SourceError(f"{path}: not UTF-8 text; save it as UTF-8") from None
    except (pa.ArrowException, json.JSONDecodeError, OSError) as error:
        raise SourceError(f"{path}: {error}") from error


def _json_line_batches(path: Path, size: int) -> Iterator[Rows]:
    # Parsed line by line: rows of a user file need not share one column type.
    rows: Rows = []
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as error:
                raise SourceError(f"{path}: line {number}: not valid JSON: {error.msg}") from None
            if not isinstance(row, dict):
                raise SourceError(f"{path}: line {number}: a row must be a JSON object, not {row!r:.40}")
            rows.append(row)
            if len(rows) == size:
                yield rows
                rows = []
    if rows:
        yield rows


def _arrow_batches(path: Path, suffix: str, size: int) -> Iterator[Any]:
    """Parquet row groups or CSV blocks as Arrow record batches, read as they are asked for."""
    if suffix == ".parquet":
        import pyarrow.parquet as pq

        yield from pq.ParquetFile(path).iter_batches(batch_size=size)
    else:
        import pyarrow.csv as pcsv

        yield from pcsv.open_csv(path)


def check_columns(first: Mapping[str, Any] | None, needed: Iterable[str], where: str) -> None:
    if first is None:
        raise SourceError(f"{where}: no rows")
    missing = sorted(set(needed) - set(first))
    if missing:
        raise SourceError(f"{where}: missing column(s) {', '.join(missing)}; found {', '.join(sorted(first))}")
