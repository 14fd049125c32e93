"""vLLM on a Ray cluster through Ray Data's LLM batch processor (`ray.data.llm`). Ray is imported only here.

Only the pending requests become the Ray dataset; results stream back to the driver (`iter_batches`) and into the
store by key as they arrive, so exactly-once and resume are the build's own. Ray schedules the engines (replicas,
placement, retries); cotforge shards nothing. Requests are taken in windows, so the driver never holds more than
one window of prompts; each window is one run of the processor, whose engines start again.

Ray Data returns one completion per row, so a request for n answers becomes n rows (with a seed, sample i uses
seed + i, or the n answers would be one answer n times), and the n answers are sunk together. The processor reports
no finish reason: an answer that used all of `max_tokens` is taken as cut ("length").
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import signal
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from cotforge.builders.store import Store
from cotforge.builders.teachers.base import (
    Failure,
    LiveStats,
    Outcome,
    Sink,
    TeacherError,
    TeacherRequest,
    share_usage,
    traced_answer,
)
from cotforge.builders.teachers.reasoning import separate
from cotforge.builders.teachers.vllm_reasoning import Splitter, parser_name, trace_splitter
from cotforge.schemas.recipe import SamplingParams
from cotforge.schemas.teachers import RayTeacherSpec

WINDOW = 100_000  # requests per processor run: bounds the driver's memory; each run starts the engines again
LOG_FILE = "ray.log"
_ERROR = "__cotforge_error__"  # a row that carries the exception that ended the run


def sampling_rows(request: TeacherRequest, sampling: SamplingParams) -> Iterator[dict[str, Any]]:
    """The n rows of one request, one per answer, in the columns the processor's preprocess reads."""
    for sample in range(request.n):
        params: dict[str, Any] = {
            "temperature": sampling.temperature,
            "top_p": sampling.top_p,
            "max_tokens": sampling.max_tokens,
        }
        if sampling.seed is not None:
            params["seed"] = sampling.seed + sample
        yield {"id": request.id, "sample": sample, "messages": request.messages, "sampling_params": params}


def _preprocess(row: dict[str, Any]) -> dict[str, Any]:
    # Module level, not a closure: Ray pickles it to every worker.
    return {
        "id": row["id"],
        "sample": row["sample"],
        "messages": [{"role": m["role"], "content": m["content"]} for m in row["messages"]],
        "sampling_params": {k: v for k, v in row["sampling_params"].items() if v is not None},
    }


def _postprocess(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "sample": int(row["sample"]),
        "text": row.get("generated_text") or "",
        "prompt_tokens": int(row.get("num_input_tokens") or 0),
        "completion_tokens": int(row.get("num_generated_tokens") or 0),
        "latency_s": float(row.get("time_taken_llm") or -1.0),
        "error": row.get("__inference_error__") or "",
    }


@dataclass
class Collector:
    """Gathers the n answer rows of each request, which arrive in any order, and yields the request's outcome
    when its last row is in: its answers in sample order, or a Failure if any of its rows failed."""

    requests: dict[str, TeacherRequest]
    max_tokens: int
    split: Splitter = separate  # the trace apart from the answer
    rows: dict[str, dict[int, dict[str, Any]]] = field(default_factory=dict)

    def add(self, row: dict[str, Any]) -> tuple[TeacherRequest, Outcome] | None:
        request = self.requests[row["id"]]
        got = self.rows.setdefault(request.id, {})
        got[int(row["sample"])] = row
        if len(got) < request.n:
            return None
        del self.rows[request.id], self.requests[request.id]
        errors = [r["error"] for r in got.values() if r["error"]]
        if errors:
            return request, Failure(f"the engine failed on this prompt: {errors[0]}")
        answers = [
            traced_answer(
                self.split(r["text"]),
                "length" if r["completion_tokens"] >= self.max_tokens else "stop",
                share_usage(r["prompt_tokens"], r["completion_tokens"], 1),  # each row is its own request
                r["latency_s"] if r["latency_s"] >= 0 else None,
            )
            for r in (got[sample] for sample in range(request.n))
        ]
        return request, answers


class RayTeacher:
    def __init__(self, spec: RayTeacherSpec, sampling: SamplingParams, log_dir: Path | None = None) -> None:
        self.spec = spec
        self.sampling = sampling
        self.log_dir = log_dir
        self._log_handler: logging.Handler | None = None

    @classmethod
    def for_build(cls, spec: RayTeacherSpec, sampling: SamplingParams, store: Store | None) -> RayTeacher:
        return cls(spec, sampling, store.path.parent if store is not None else None)

    def _import(self) -> Any:
        try:
            import ray
            import ray.data.llm
        except ImportError as error:
            raise TeacherError(
                f"teacher {self.spec.label} uses the ray backend, which cannot be imported ({error}): install "
                "ray[data] beside vLLM (not ray[llm] on a CPU machine: its extra pins the CUDA vllm)",
                usage=True,
            ) from None
        return ray

    def _engine_arguments(self) -> dict[str, Any]:
        from cotforge.builders.teachers.vllm_local import engine_arguments

        try:
            import vllm
        except ImportError:
            vllm = None
        return engine_arguments(self.spec, vllm)

    def _splitter(self) -> Splitter:
        """vLLM's reasoning parser where the spec names one and this driver has vLLM (its tokenizer loaded here),
        else the inline split, which is what the think-tag parsers (deepseek_r1, qwen3) do."""
        if parser_name(self.spec) is None:
            return separate
        try:
            from vllm.transformers_utils.tokenizer import get_tokenizer
        except ImportError:
            return separate
        return trace_splitter(self.spec, lambda: get_tokenizer(self.spec.model))

    def _connect(self, ray: Any) -> bool:
        """Joins the spec's cluster (or RAY_ADDRESS's, or a new local one); True when this call started Ray."""
        if ray.is_initialized():
            return False
        options: dict[str, Any] = {"log_to_driver": False, "logging_level": logging.WARNING}
        if self.spec.ray.address is not None:
            options["address"] = self.spec.ray.address
        self._log_to_file()
        try:
            ray.init(**options)
        except Exception as error:  # ConnectionError and Ray's own types: all end the build the same way
            raise TeacherError(f"teacher {self.spec.label}: cannot start or join Ray: {error}") from None
        self._log_to_file()
        return True

    def _log_to_file(self) -> None:
        """Ray's and vLLM's loggers in this process write to ray.log beside the store, not into the build's
        output. Called again once Ray has made more loggers (it sets up its own as its modules load)."""
        if self.log_dir is None:
            return
        if self._log_handler is None:
            self._log_handler = logging.FileHandler(self.log_dir / LOG_FILE, encoding="utf-8")
            self._log_handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        for name in ["ray", "vllm", *logging.root.manager.loggerDict]:
            if name.split(".")[0] in ("ray", "vllm"):
                logger = logging.getLogger(name)
                for handler in logger.handlers[:]:
                    logger.removeHandler(handler)
                logger.addHandler(self._log_handler)
                logger.propagate = False

    def _processor(self, ray: Any) -> Any:
        from ray.data.llm import build_processor, vLLMEngineProcessorConfig

        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = False  # the build has its own live view
        options: dict[str, Any] = {}
        if not ray.cluster_resources().get("GPU"):
            options["placement_group_config"] = {"bundles": [{"CPU": 1}]}  # else the engine waits for a GPU
        config = vLLMEngineProcessorConfig(
            model_source=self.spec.model,
            engine_kwargs=self._engine_arguments(),
            concurrency=self.spec.ray.replicas,
            batch_size=self.spec.ray.batch_size,
            should_continue_on_error=True,  # a failed prompt is that request's Failure, not the build's end
            log_engine_metrics=False,
            **options,
        )
        # The postprocess only renames columns: it takes no CPU, or on a small cluster whose CPUs the stage actors
        # hold, its tasks wait for the whole run to end and nothing streams back until then.
        processor = build_processor(
            config, preprocess=_preprocess, postprocess=_postprocess, postprocess_map_kwargs={"num_cpus": 0}
        )
        self._log_to_file()
        return processor

    def _stream(
        self,
        ray: Any,
        window: list[TeacherRequest],
        emit: Callable[[dict[str, Any] | None], None],
        stop: threading.Event,
    ) -> None:
        """One processor run over `window`, in a thread of its own: each result row goes to `emit` as it arrives,
        then None; an exception goes to `emit` in place of None."""
        try:
            rows = [row for request in window for row in sampling_rows(request, self.sampling)]
            processor = self._processor(ray)
            # Blocks of one engine batch each, so results stream back as batches finish, not at the end.
            blocks = max(1, -(-len(rows) // self.spec.ray.batch_size))
            dataset = processor(ray.data.from_items(rows, override_num_blocks=blocks))
            del rows
            for batch in dataset.iter_batches(batch_size=None, batch_format="pyarrow"):
                for row in batch.to_pylist():
                    emit(row)
                if stop.is_set():
                    break  # leaving the iterator ends Ray's execution
        except Exception as error:
            emit({_ERROR: error})
        emit(None)

    async def run(self, requests: Iterable[TeacherRequest], sink: Sink, stats: LiveStats) -> None:
        pending = iter(requests)
        loop = asyncio.get_running_loop()
        ray = self._import()
        started = await asyncio.to_thread(self._connect, ray)
        # Ray's core worker takes SIGTERM over at start; give it back to the build, which stores and exports
        # before it exits (re-setting Python's handler re-installs it at the C level).
        handler = signal.getsignal(signal.SIGTERM)
        if handler is not None:  # None: set outside Python, nothing to give back
            signal.signal(signal.SIGTERM, handler)
        stop = threading.Event()
        try:
            while window := list(itertools.islice(pending, WINDOW)):
                if stats.stop:
                    return
                collector = Collector({r.id: r for r in window}, self.sampling.max_tokens, self._splitter())
                arrived: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
                stats.in_flight = len(window)
                stats.requests_sent += len(window)
                # A daemon thread, not the loop's executor: an interrupted build must not wait for Ray to finish.
                emit = partial(loop.call_soon_threadsafe, arrived.put_nowait)
                threading.Thread(target=self._stream, args=(ray, window, emit, stop), daemon=True).start()
                while (row := await arrived.get()) is not None:
                    if _ERROR in row:  # Ray's errors: the answers stored so far stay stored
                        error = row[_ERROR]
                        raise TeacherError(f"teacher {self.spec.label}: the Ray run failed: {_summary(error)}")
                    done = collector.add(row)
                    if done is not None:
                        stats.in_flight = max(stats.in_flight - 1, 0)
                        sink(*done)
                    if stats.stop:
                        stop.set()
        finally:
            stop.set()
            stats.in_flight = 0
            if started:
                with contextlib.suppress(Exception):
                    await asyncio.to_thread(ray.shutdown)


def _summary(error: Exception) -> str:
    """The exception's type and last line: Ray puts the cause there, after the remote traceback."""
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[-1] if text else ''}"
