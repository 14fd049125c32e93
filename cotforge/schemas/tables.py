"""Records as Parquet: one fixed column schema per type, so every subset file has the same layout."""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from pathlib import Path
from typing import TypeVar

import polars as pl
import pyarrow.parquet as pq
from pydantic import ValidationError

from cotforge.safety.atomic import atomic_path
from cotforge.schemas.record import AnswerOrigin, CoTRecord, Rejection

_MESSAGES = pl.List(pl.Struct({"role": pl.Utf8, "content": pl.Utf8}))
_ORIGIN_COLUMNS: dict[str, pl.DataType] = {
    "key": pl.Utf8,
    "problem_id": pl.Utf8,
    "dataset": pl.Utf8,
    "teacher": pl.Utf8,
    "teacher_model": pl.Utf8,
    "granularity": pl.Int8,
    "format": pl.Utf8,
    "format_mode": pl.Utf8,
    "prompt_mode": pl.Utf8,
    "prompt_version": pl.Utf8,
    "sample_index": pl.Int32,
    "sampling": pl.Struct(
        {"temperature": pl.Float64, "top_p": pl.Float64, "max_tokens": pl.Int64, "n": pl.Int64, "seed": pl.Int64}
    ),
    "finish_reason": pl.Utf8,
    "usage": pl.Struct({"prompt_tokens": pl.Int64, "completion_tokens": pl.Int64}),
    "reasoning_tokens": pl.Int64,
    "cost_usd": pl.Float64,
    "latency_s": pl.Float64,
    "created_at": pl.Datetime("us", "UTC"),
}
RECORD_COLUMNS: dict[str, pl.DataType] = {
    **_ORIGIN_COLUMNS,
    "source_split": pl.Utf8,
    "question": pl.Utf8,
    "choices": pl.List(pl.Utf8),
    "gold_answer": pl.Utf8,
    "answer_type": pl.Utf8,
    "messages_sent": _MESSAGES,
    "rationale": pl.Utf8,
    "reasoning": pl.Utf8,
    "steps": pl.List(pl.Utf8),
    "predicted_answer": pl.Utf8,
    "answer_source": pl.Utf8,
    "correct": pl.Boolean,
    "answer_object": pl.Utf8,
    # training views, derived from the fields above
    "prompt": pl.Utf8,
    "completion": pl.Utf8,
    "messages": _MESSAGES,
}
REJECTION_COLUMNS: dict[str, pl.DataType] = {
    **_ORIGIN_COLUMNS,
    "reason": pl.Utf8,
    "detail": pl.Utf8,
    "raw_response": pl.Utf8,
    "raw_reasoning": pl.Utf8,
}

Row = TypeVar("Row", bound=AnswerOrigin)


def _columns(model: type[AnswerOrigin]) -> dict[str, pl.DataType]:
    return RECORD_COLUMNS if model is CoTRecord else REJECTION_COLUMNS


def to_frame(rows: Iterable[AnswerOrigin], model: type[AnswerOrigin] = CoTRecord) -> pl.DataFrame:
    """A DataFrame with the fixed columns of `model`, in order."""
    dicts = []
    for row in rows:
        data = row.model_dump(mode="json")
        data["created_at"] = row.created_at  # keep it a timestamp, not text
        dicts.append(data)
    return pl.DataFrame(dicts, schema=_columns(model), orient="row" if not dicts else None)


def from_frame(frame: pl.DataFrame, model: type[Row]) -> list[Row]:
    return [model.model_validate(row) for row in frame.to_dicts()]


def write_parquet(
    path: Path, rows: Iterable[AnswerOrigin], model: type[AnswerOrigin] = CoTRecord, row_group_size: int = 1000
) -> int:
    """Write `rows` (any iterable: a store streams them) one row group at a time, so memory holds one group, not
    the file. Atomic: a reader never sees half a file. Returns the number of rows."""
    iterator = iter(rows)
    written = 0
    with atomic_path(path) as partial:  # a kill or a full disk leaves the old file, never half a new one
        writer: pq.ParquetWriter | None = None
        try:
            while group := list(itertools.islice(iterator, row_group_size)):
                table = to_frame(group, model).to_arrow()
                if writer is None:
                    writer = pq.ParquetWriter(partial, table.schema)
                writer.write_table(table, row_group_size=row_group_size)
                written += len(group)
            if writer is None:
                to_frame([], model).write_parquet(partial)
        finally:
            if writer is not None:
                writer.close()
    return written


class TableError(ValueError):
    """A Parquet file that cannot be read back into typed rows; the message names the file and the row."""


def read_parquet(path: Path, model: type[Row]) -> list[Row]:
    try:
        frame = pl.read_parquet(path)
    except (pl.exceptions.PolarsError, OSError) as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise TableError(f"{path}: not a readable Parquet file ({first})") from None
    rows = []
    for index, data in enumerate(frame.to_dicts()):
        try:
            rows.append(model.model_validate(data))
        except ValidationError as error:
            item = error.errors()[0]
            where = ".".join(str(part) for part in item["loc"]) or "(row)"
            raise TableError(f"{path}: row {index} is not a valid {model.__name__}: {where}: {item['msg']}") from None
    return rows


__all__ = [
    "RECORD_COLUMNS",
    "REJECTION_COLUMNS",
    "CoTRecord",
    "Rejection",
    "TableError",
    "from_frame",
    "read_parquet",
    "to_frame",
    "write_parquet",
]
