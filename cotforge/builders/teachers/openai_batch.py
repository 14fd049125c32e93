"""The OpenAI Batch API: half price, answers within 24 hours, and a killed run picks its batches up again."""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import Iterable, Sequence
from typing import Any

import openai

from cotforge.builders.store import Store
from cotforge.builders.teachers.base import (
    Failure,
    LiveStats,
    SecretRedactor,
    Sink,
    TeacherRequest,
    answers_from_completion,
    chat_params,
)
from cotforge.schemas.recipe import SamplingParams
from cotforge.schemas.teachers import OpenAIBatchTeacherSpec

MAX_REQUESTS_PER_BATCH = 50_000
MAX_BYTES_PER_BATCH = 200 * 1024**2
ENDPOINT = "/v1/chat/completions"
FINAL_STATES = {"completed", "failed", "expired", "cancelled"}


def split_batches(
    lines: Sequence[tuple[str, bytes]], max_requests: int, max_bytes: int
) -> list[list[tuple[str, bytes]]]:
    """Consecutive chunks within both the request and the byte limit of one batch file."""
    chunks: list[list[tuple[str, bytes]]] = []
    current: list[tuple[str, bytes]] = []
    size = 0
    for request_id, line in lines:
        if current and (len(current) >= max_requests or size + len(line) > max_bytes):
            chunks.append(current)
            current, size = [], 0
        current.append((request_id, line))
        size += len(line)
    if current:
        chunks.append(current)
    return chunks


class OpenAIBatchTeacher:
    def __init__(
        self,
        spec: OpenAIBatchTeacherSpec,
        sampling: SamplingParams,
        store: Store,
        max_requests: int = MAX_REQUESTS_PER_BATCH,
        max_bytes: int = MAX_BYTES_PER_BATCH,
    ) -> None:
        self.spec = spec
        self.sampling = sampling
        self.store = store
        self.max_requests, self.max_bytes = max_requests, max_bytes
        key = spec.api_key()
        self.redact = SecretRedactor([key])
        self.client = openai.AsyncOpenAI(
            api_key=key, base_url=spec.base_url, max_retries=spec.max_retries, timeout=spec.timeout_s
        )

    @classmethod
    def for_build(
        cls, spec: OpenAIBatchTeacherSpec, sampling: SamplingParams, store: Store | None
    ) -> OpenAIBatchTeacher:
        if store is None:
            raise ValueError("the openai-batch backend keeps its batch ids in the build's store")
        return cls(spec, sampling, store)

    def _line(self, request: TeacherRequest) -> bytes:
        body = {"messages": request.messages, **chat_params(self.spec, self.sampling, request.n)}
        row = {"custom_id": request.id, "method": "POST", "url": ENDPOINT, "body": body}
        return (json.dumps(row, ensure_ascii=False) + "\n").encode()

    async def _submit(self, requests: Sequence[TeacherRequest], stats: LiveStats) -> list[str]:
        batch_ids = []
        lines = [(r.id, self._line(r)) for r in requests]
        for chunk in split_batches(lines, self.max_requests, self.max_bytes):
            if stats.stop:
                break
            data = b"".join(line for _, line in chunk)
            upload = await self.client.files.create(file=("requests.jsonl", io.BytesIO(data)), purpose="batch")
            batch = await self.client.batches.create(
                input_file_id=upload.id,
                endpoint=ENDPOINT,
                completion_window="24h",
                metadata={"cotforge_teacher": self.spec.label},
            )
            # Stored before waiting: a run killed now finds this batch again instead of paying for it twice.
            self.store.add_batch(batch.id, self.spec.label, [request_id for request_id, _ in chunk])
            stats.requests_sent += len(chunk)
            batch_ids.append(batch.id)
        return batch_ids

    async def _wait(self, batch_id: str, stats: LiveStats) -> Any:
        while True:
            batch = await self.client.batches.retrieve(batch_id)
            if batch.status in FINAL_STATES:
                return batch
            if stats.stop:
                return None  # left open in the store; the next run polls it again
            await asyncio.sleep(self.spec.batch_poll_s)

    async def _lines(self, file_id: str | None) -> list[dict[str, Any]]:
        if not file_id:
            return []
        content = await self.client.files.content(file_id)
        rows = []
        for line in content.text.splitlines():
            try:
                row = json.loads(line)
            except ValueError:
                continue  # its request, unanswered, goes in the next batch
            if isinstance(row, dict):
                rows.append(row)
        return rows

    async def _collect(self, batch: Any, mine: dict[str, TeacherRequest], sink: Sink) -> dict[str, str]:
        """Pass this batch's answers to the sink; return the requests left unanswered, with why."""
        answered: set[str] = set()
        unanswered: dict[str, str] = {}
        for row in await self._lines(batch.output_file_id) + await self._lines(batch.error_file_id):
            custom_id = row.get("custom_id")
            request = mine.get(custom_id) if isinstance(custom_id, str) else None
            if request is None or request.id in answered:
                continue  # settled by an earlier run, a duplicate line, or not one of ours
            response = row.get("response") if isinstance(row.get("response"), dict) else {}
            body = response.get("body")
            if response.get("status_code") == 200:
                try:
                    answers = answers_from_completion(body, latency_s=None)
                except ValueError as broken:  # asked again, as a broken reply from the chat API is
                    unanswered[request.id] = f"batch {batch.id}: {broken}"
                    continue
                if answers:
                    sink(request, answers)
                    answered.add(request.id)
                    continue
            error = row.get("error") or (body.get("error") if isinstance(body, dict) else None) or {}
            status = response.get("status_code")
            message = error.get("message") if isinstance(error, dict) else error
            unanswered[request.id] = self.redact(
                f"batch {batch.id}: " + (f"HTTP {status}: " if status else "") + str(message or error)
            )
        for request_id in mine:
            if request_id not in answered and request_id not in unanswered:
                unanswered[request_id] = f"batch {batch.id} ended {batch.status} without this request"
        return unanswered

    async def run(self, requests: Iterable[TeacherRequest], sink: Sink, stats: LiveStats) -> None:
        waiting = {r.id: r for r in requests}  # a batch file holds them all anyway
        try:
            # Only batches holding this run's requests: a top-up round's batch waits for its own round.
            open_batches = [batch for batch in self.store.open_batches(self.spec.label) if waiting.keys() & batch[1]]
            # Requests already in an open batch are not sent again.
            in_flight = {request_id for _, ids in open_batches for request_id in ids}
            fresh = [r for r in waiting.values() if r.id not in in_flight]
            batch_ids = [bid for bid, _ in open_batches] + await self._submit(fresh, stats)
            for round_ in range(self.spec.max_retries + 1):
                stats.in_flight = len(waiting)
                retry: list[TeacherRequest] = []
                for batch_id in batch_ids:
                    batch = await self._wait(batch_id, stats)
                    if batch is None:
                        return
                    ids = dict(self.store.open_batches(self.spec.label)).get(batch_id, [])
                    mine = {i: waiting[i] for i in ids if i in waiting}
                    unanswered = await self._collect(batch, mine, sink)
                    for request_id in mine.keys() - unanswered.keys():
                        del waiting[request_id]
                    self.store.close_batch(batch_id)
                    for request_id, why in unanswered.items():
                        if round_ < self.spec.max_retries:
                            retry.append(waiting[request_id])  # only failed or expired requests go again
                        else:
                            sink(waiting.pop(request_id), Failure(why))
                if not retry or stats.stop:
                    return
                batch_ids = await self._submit(retry, stats)
        except openai.APIError as error:  # refused key, unreachable API: every request would fail the same way
            why = self.redact(f"Batch API: {type(error).__name__}: {getattr(error, 'message', error)}")
            for request in list(waiting.values()):  # requests in open batches are polled again next run
                sink(waiting.pop(request.id), Failure(why, fatal=True))
        finally:
            stats.in_flight = 0
            await self.client.close()
