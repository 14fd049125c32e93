from __future__ import annotations

from datetime import timezone
from pathlib import Path

import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cotforge.schemas import (
    AnswerType,
    ChatMessage,
    CoTFormat,
    CoTRecord,
    PromptMode,
    Rejection,
    RejectionReason,
    SamplingParams,
    TokenUsage,
)
from cotforge.schemas.tables import RECORD_COLUMNS, REJECTION_COLUMNS, read_parquet, to_frame, write_parquet

text = st.text(min_size=1, max_size=40)
nonneg = st.floats(min_value=0, max_value=1e6, allow_nan=False)
origin = dict(
    key=st.text(alphabet="0123456789abcdef", min_size=8, max_size=32),
    problem_id=text,
    dataset=st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,20}", fullmatch=True),
    teacher=st.from_regex(r"[a-z0-9][a-z0-9._-]{0,10}", fullmatch=True),
    teacher_model=text,
    granularity=st.integers(0, 6),
    format=st.sampled_from(CoTFormat),
    prompt_mode=st.sampled_from(PromptMode),
    prompt_version=text,
    sample_index=st.integers(0, 1000),
    sampling=st.builds(
        SamplingParams,
        temperature=st.floats(0, 2),
        top_p=st.floats(0.01, 1),
        max_tokens=st.integers(1, 10**6),
        n=st.integers(1, 128),
        seed=st.none() | st.integers(-(2**31), 2**31),
    ),
    finish_reason=st.none() | st.sampled_from(["stop", "length"]),
    usage=st.builds(TokenUsage, prompt_tokens=st.integers(0, 10**7), completion_tokens=st.integers(0, 10**7)),
    cost_usd=st.none() | nonneg,
    latency_s=st.none() | nonneg,
    created_at=st.datetimes(timezones=st.just(timezone.utc)),
)
records = st.builds(
    CoTRecord,
    **origin,
    source_split=text,
    question=text,
    choices=st.none() | st.lists(text, min_size=2, max_size=5),
    gold_answer=text,
    answer_type=st.sampled_from(AnswerType),
    messages_sent=st.lists(
        st.builds(ChatMessage, role=st.sampled_from(["system", "user"]), content=st.text()), min_size=1, max_size=3
    ),
    rationale=text,
    steps=st.lists(st.text(max_size=30), max_size=5),
    predicted_answer=text,
    correct=st.booleans(),
)
rejections = st.builds(
    Rejection, **origin, reason=st.sampled_from(RejectionReason), detail=st.text(), raw_response=st.none() | st.text()
)
SLOW = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@SLOW
@given(st.lists(records, min_size=1, max_size=4))
def test_records_round_trip_json_and_parquet(tmp_path: Path, rows: list[CoTRecord]) -> None:
    for row in rows:
        assert CoTRecord.model_validate_json(row.model_dump_json()) == row
    path = tmp_path / "records.parquet"
    write_parquet(path, rows, CoTRecord)
    assert read_parquet(path, CoTRecord) == rows


@SLOW
@given(st.lists(rejections, min_size=1, max_size=4))
def test_rejections_round_trip_json_and_parquet(tmp_path: Path, rows: list[Rejection]) -> None:
    for row in rows:
        assert Rejection.model_validate_json(row.model_dump_json()) == row
    path = tmp_path / "rejections.parquet"
    write_parquet(path, rows, Rejection)
    assert read_parquet(path, Rejection) == rows


@SLOW
@given(records)
def test_parquet_columns_cover_every_field(row: CoTRecord) -> None:
    assert set(row.model_dump()) == set(RECORD_COLUMNS)
    assert to_frame([row]).schema == pl.Schema(RECORD_COLUMNS)


def test_rejection_columns_cover_every_field() -> None:
    assert set(Rejection.model_fields) == set(REJECTION_COLUMNS)


def test_empty_frame_has_the_schema() -> None:
    assert to_frame([], CoTRecord).schema == pl.Schema(RECORD_COLUMNS)
