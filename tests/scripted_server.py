"""A scripted OpenAI-compatible server on 127.0.0.1, for what a real model cannot show on demand.

Each chat request is answered from its last user message:
- `answer=X` in the message: the reply reasons briefly and ends "The answer is X" (default 42);
  `answers=X,Y,Z`: the answer X to a request with seed 0 (or none), Y to seed 1, Z to seed 2 and later ones;
- `fault=a,b,c`: the first attempts for that message get faults a, b, c in turn, later ones succeed. Faults:
  429 (with Retry-After), 500, 503, 401, drop (connection closed), timeout (no reply in time), malformed (bad JSON),
  length (finish_reason length), refusal, empty, noanswer (no final answer line), surrogate (a lone surrogate in
  the text), nul (a NUL in the text), huge (a 5 MB answer), negusage (a good answer with negative usage), and
  fields out of shape: bignumber (an answer of 400 digits), finishint (finish_reason 7), refusalobj (a refusal that
  is an object), hugeusage (token counts of 2**63 and more), contentlist (content a list), choicetext (a choice that
  is a string);
- `shape=X`: a reasoning model's reply, its trace (which holds a wrong answer line, to be ignored) given as X:
  `reasoning_content`, `reasoning` or `thinking` (a field of its own), `inline` (`<think>…</think>` before the
  answer), `prefilled` (only the closing `</think>`), `cut` (`<think>…` cut by the budget: finish_reason length),
  `open` (`<think>…` never closed, finish_reason stop), `fieldcut` (a separate trace cut by the budget, no content),
  `after` (the answer, then a `<think>` block), `nested` (a `<think>` block inside the trace), `both` (the trace in
  `reasoning_content` and inline too);
  usage then reports the trace's words as `completion_tokens_details.reasoning_tokens`, in a batch too;
- `object=X` (a request with an answer format: the message ends with its JSON schema): X itself, JSON with no
  spaces (`object={"answer":5,"unit":"m"}`), valid for the schema or not;
- `verdict=X` (a judge's request: the message quotes the judged question): a judge's verdict, X a whole score
  (`{"score": X, "reason": ...}`, in range or not), `notjson` (prose) or `noreason` (the reason missing);
- `batchfail`: in a batch, this request fails with a 500 in the error file; `expire`: a batch holding it expires
  with this request unanswered; `batchjunk`: the first batch answers it with a body that is no completion, among
  lines that are not JSON or not ours; `fault=` faults of a field out of shape apply in a batch too.
Files and Batches endpoints follow the OpenAI API. Every request is logged with its arrival time.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from .aio_server import BackgroundServer

# A reasoning model's trace: it states a wrong answer on the way, which must never be read as the final answer.
TRACE = "First guess: The answer is 99. That is wrong; count again, item by item, and check the sum."


@dataclass
class LogEntry:
    arrived: float
    path: str
    message: str
    status: int
    chat: str = ""  # every message of a chat request, as sorted JSON: tells apart prompts with one question
    params: dict[str, Any] = field(default_factory=dict)  # a chat request's body less its messages


@dataclass
class ScriptedServer(BackgroundServer):
    latency_s: float = 0.0
    slots: int = 0  # > 0: answer at most this many chats at once and queue the rest, as a llama.cpp server does
    retry_after_s: float = 0.05
    timeout_sleep_s: float = 5.0
    rate_limit_headers: dict[str, str] = field(default_factory=dict)
    batch_polls_until_done: int = 2
    echo_auth: bool = False
    auth_seen: list[str] = field(default_factory=list)
    log: list[LogEntry] = field(default_factory=list)
    attempts: Counter = field(default_factory=Counter)
    files: dict[str, bytes] = field(default_factory=dict)
    batches: dict[str, dict[str, Any]] = field(default_factory=dict)
    _slots: asyncio.Semaphore | None = None

    def make_app(self) -> web.Application:
        app = web.Application(client_max_size=512 * 1024**2)
        app.router.add_post("/v1/chat/completions", self.chat)
        app.router.add_post("/v1/files", self.upload)
        app.router.add_get("/v1/files/{file_id}/content", self.file_content)
        app.router.add_post("/v1/batches", self.create_batch)
        app.router.add_get("/v1/batches/{batch_id}", self.get_batch)
        return app

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def answered(self, path: str = "/v1/chat/completions") -> list[LogEntry]:
        return [e for e in self.log if e.path == path and e.status == 200]

    # ---- chat ----

    @staticmethod
    def _completion(
        body: dict[str, Any], contents: list[tuple[str | None, str, str | None]], trace: tuple[str, str] | None = None
    ) -> dict[str, Any]:
        """`trace`: (field name, text) of a reasoning model's trace given in a field of its own."""
        prompt_chars = sum(len(m.get("content") or "") for m in body.get("messages", []))
        extra = {trace[0]: trace[1]} if trace else {}
        choices = [
            {
                "index": i,
                "message": {"role": "assistant", "content": content, "refusal": refusal, **extra},
                "finish_reason": finish,
                "logprobs": None,
            }
            for i, (content, finish, refusal) in enumerate(contents)
        ]
        completion_tokens = sum(len((c or "").split()) for c, _, _ in contents)
        usage: dict[str, Any] = {"prompt_tokens": prompt_chars // 4}
        if trace or any(TRACE in (c or "") for c, _, _ in contents):
            reasoning = len(TRACE.split()) * len(contents)
            completion_tokens += reasoning if trace else 0
            usage["completion_tokens_details"] = {"reasoning_tokens": reasoning}
        usage |= {"completion_tokens": completion_tokens, "total_tokens": prompt_chars // 4 + completion_tokens}
        return {
            "id": f"chatcmpl-{time.monotonic_ns()}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model", "scripted"),
            "choices": choices,
            "usage": usage,
        }

    @staticmethod
    def _traced(message: str, reply: str, n: int) -> tuple[list[tuple[str | None, str, str | None]], tuple | None]:
        """The choices and separate trace of a `shape=` reply; a plain reply where the message has no shape."""
        found = re.search(r"shape=(\w+)", message)
        shape = found.group(1) if found else None
        inline = {
            "inline": (f"<think>\n{TRACE}\n</think>\n\n{reply}", "stop"),
            "prefilled": (f"{TRACE}\n</think>\n\n{reply}", "stop"),
            "cut": (f"<think>\n{TRACE}", "length"),
            "open": (f"<think>\n{TRACE}", "stop"),
            "after": (f"{reply}\n<think>\n{TRACE}\n</think>", "stop"),
            "nested": (f"<think>\nLet me see. <think>{TRACE}</think> {TRACE}\n</think>\n\n{reply}", "stop"),
        }
        if shape in inline:
            content, finish = inline[shape]
            return [(content, finish, None)] * n, None
        if shape == "both":
            return [(f"<think>\n{TRACE}\n</think>\n\n{reply}", "stop", None)] * n, ("reasoning_content", TRACE)
        if shape == "fieldcut":
            return [("", "length", None)] * n, ("reasoning_content", TRACE)
        if shape in ("reasoning_content", "reasoning", "thinking"):
            return [(reply, "stop", None)] * n, (shape, TRACE)
        return [(reply, "stop", None)] * n, None

    @staticmethod
    def _last_user(body: dict[str, Any]) -> str:
        users = [m for m in body.get("messages", []) if m.get("role") == "user"]
        return str(users[-1].get("content", "")) if users else ""

    @staticmethod
    def _reply(message: str, seed: int | None = None) -> str:
        verdict = re.search(r"verdict=(\w+)", message)
        if verdict and "Solution to grade" in message:
            scripted = {"notjson": "The solution looks fine to me, I would give it a four.", "noreason": '{"score": 3}'}
            given = verdict.group(1)
            return scripted.get(given) or json.dumps({"score": int(given), "reason": "Scripted verdict."})
        given_object = re.search(r"object=(\S+)", message)
        if given_object and "Its JSON schema:" in message:
            return given_object.group(1)
        by_seed = re.search(r"answers=([\w.,-]+)", message)
        if by_seed:
            answers = by_seed.group(1).split(",")
            return f"We work it out step by step.\nThe answer is {answers[min(seed or 0, len(answers) - 1)]}"
        found = re.findall(r"answer=(\S+?)(?=[\s,;]|$)", message)
        return f"We work it out step by step.\nThe answer is {found[-1] if found else '42'}"

    def _fault(self, message: str) -> str | None:
        found = re.search(r"fault=([\w,]+)", message)
        attempt = self.attempts[message]
        self.attempts[message] += 1
        if not found:
            return None
        faults = found.group(1).split(",")
        return faults[attempt] if attempt < len(faults) else None

    def _error(self, status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
        body = {"error": {"message": message, "type": "scripted", "code": str(status)}}
        return web.json_response(body, status=status, headers={**self.rate_limit_headers, **(headers or {})})

    async def chat(self, request: web.Request) -> web.StreamResponse:
        arrived = time.time()
        body = await request.json()
        self.auth_seen.append(request.headers.get("Authorization", ""))
        message = self._last_user(body)
        fault = self._fault(message)
        status = 200
        try:
            if self.slots:
                if self._slots is None:
                    self._slots = asyncio.Semaphore(self.slots)
                async with self._slots:  # a queued request keeps waiting even after its client gave up
                    await asyncio.sleep(self.latency_s)
            elif self.latency_s:
                await asyncio.sleep(self.latency_s)
            n = int(body.get("n") or 1)
            reply = self._reply(message, body.get("seed"))
            if fault == "429":
                status = 429
                return self._error(429, "Rate limit reached", {"retry-after": str(self.retry_after_s)})
            if fault == "401":
                status = 401
                key = request.headers.get("Authorization", "").removeprefix("Bearer ")
                return self._error(401, f"Incorrect API key provided: {key if self.echo_auth else '***'}")
            if fault in ("500", "503"):
                status = int(fault)
                return self._error(status, f"scripted {fault}")
            if fault == "drop":
                status = -1
                request.transport.close()
                raise web.HTTPInternalServerError()
            if fault == "timeout":
                status = -2
                await asyncio.sleep(self.timeout_sleep_s)
            if fault == "malformed":
                return web.Response(text='{"id": "x", "choices": [', content_type="application/json")
            contents: list[tuple[str | None, str, str | None]]
            if fault == "length":
                contents = [("We work it out step", "length", None)] * n
            elif fault == "refusal":
                contents = [(None, "stop", "I can't help with that.")] * n
            elif fault == "empty":
                contents = [("", "stop", None)] * n
            elif fault == "noanswer":
                contents = [("I am not sure how to solve this.", "stop", None)] * n
            elif fault in ("surrogate", "nul", "huge"):
                poison = {"surrogate": "\udc80", "nul": "\x00", "huge": "x" * 5_000_000}[fault]
                contents = [(f"We work {poison} it out.\nThe answer is 5", "stop", None)] * n
            else:
                contents, trace = self._traced(message, reply, n)
                completion = self._completion(body, contents, trace)
                self._out_of_shape(completion, fault)
                return web.json_response(completion, headers=self.rate_limit_headers)
            return web.json_response(self._completion(body, contents), headers=self.rate_limit_headers)
        finally:
            chat = json.dumps(body.get("messages", []), sort_keys=True)
            params = {k: v for k, v in body.items() if k != "messages"}
            self.log.append(LogEntry(arrived, request.path, message, status, chat, params))

    @staticmethod
    def _out_of_shape(completion: dict[str, Any], fault: str | None) -> None:
        """A good completion with one field made hostile, as `fault` names."""
        choice = completion["choices"][0]
        if fault == "negusage":
            completion["usage"] = {"prompt_tokens": -29, "completion_tokens": "many", "total_tokens": -1}
        elif fault == "hugeusage":
            completion["usage"] = {
                "prompt_tokens": 2**63,
                "completion_tokens": 2**64 + 1,
                "completion_tokens_details": {"reasoning_tokens": 2**63},
            }
        elif fault == "bignumber":
            choice["message"]["content"] = "We work it out.\nThe answer is " + "9" * 400
        elif fault == "finishint":
            choice["finish_reason"] = 7
        elif fault == "refusalobj":
            choice["message"]["refusal"] = {"reason": "policy"}
        elif fault == "contentlist":
            choice["message"]["content"] = [{"type": "text", "text": "The answer is 5"}]
        elif fault == "choicetext":
            completion["choices"] = ["The answer is 5"] * len(completion["choices"])

    # ---- files and batches ----

    async def upload(self, request: web.Request) -> web.Response:
        form = await request.post()
        upload = form["file"]
        data = upload.file.read()
        file_id = f"file-{len(self.files) + 1}"
        self.files[file_id] = data
        self.log.append(LogEntry(time.time(), request.path, file_id, 200))
        return web.json_response(self._file_object(file_id, upload.filename, str(form.get("purpose", "batch"))))

    def _file_object(self, file_id: str, filename: str, purpose: str) -> dict[str, Any]:
        return {
            "id": file_id,
            "object": "file",
            "bytes": len(self.files[file_id]),
            "created_at": int(time.time()),
            "filename": filename,
            "purpose": purpose,
            "status": "processed",
        }

    async def file_content(self, request: web.Request) -> web.Response:
        file_id = request.match_info["file_id"]
        if file_id not in self.files:
            return self._error(404, f"no file {file_id}")
        return web.Response(body=self.files[file_id], content_type="application/octet-stream")

    async def create_batch(self, request: web.Request) -> web.Response:
        body = await request.json()
        batch_id = f"batch_{len(self.batches) + 1}"
        lines = [json.loads(line) for line in self.files[body["input_file_id"]].decode().splitlines() if line]
        batch = {
            "id": batch_id,
            "object": "batch",
            "endpoint": body["endpoint"],
            "errors": None,
            "input_file_id": body["input_file_id"],
            "completion_window": body["completion_window"],
            "status": "validating",
            "output_file_id": None,
            "error_file_id": None,
            "created_at": int(time.time()),
            "request_counts": {"total": len(lines), "completed": 0, "failed": 0},
            "metadata": body.get("metadata"),
        }
        self.batches[batch_id] = {"object": batch, "lines": lines, "polls": 0}
        self.log.append(LogEntry(time.time(), request.path, batch_id, 200))
        return web.json_response(batch)

    async def get_batch(self, request: web.Request) -> web.Response:
        batch_id = request.match_info["batch_id"]
        if batch_id not in self.batches:
            return self._error(404, f"no batch {batch_id}")
        entry = self.batches[batch_id]
        entry["polls"] += 1
        batch = entry["object"]
        if batch["status"] == "validating":
            batch["status"] = "in_progress"
        elif batch["status"] == "in_progress" and entry["polls"] >= self.batch_polls_until_done:
            self._finish(batch_id, entry)
        self.log.append(LogEntry(time.time(), request.path, batch_id, 200))
        return web.json_response(batch)

    def _finish(self, batch_id: str, entry: dict[str, Any]) -> None:
        outputs, errors = [], []
        expired = any("expire" in self._last_user(line["body"]) for line in entry["lines"])
        for line in entry["lines"]:
            message = self._last_user(line["body"])
            custom_id = line["custom_id"]
            if "expire" in message and self.attempts[message] == 0:
                self.attempts[message] += 1
                errors.append(
                    {
                        "id": f"req_{custom_id}",
                        "custom_id": custom_id,
                        "response": None,
                        "error": {"code": "batch_expired", "message": "not completed within the window"},
                    }
                )
            elif "batchfail" in message:
                errors.append(
                    {
                        "id": f"req_{custom_id}",
                        "custom_id": custom_id,
                        "response": {
                            "status_code": 500,
                            "request_id": "r",
                            "body": {"error": {"message": "scripted batch failure"}},
                        },
                        "error": None,
                    }
                )
            elif "batchjunk" in message and self.attempts[message] == 0:
                self.attempts[message] += 1
                outputs += [
                    {"custom_id": custom_id, "response": {"status_code": 200, "body": {"error": "no choices"}}},
                    {"custom_id": [custom_id], "response": None},
                    {"custom_id": custom_id, "response": [200]},
                    [custom_id],
                ]
            else:
                n = int(line["body"].get("n") or 1)
                body = self._completion(
                    line["body"], *self._traced(message, self._reply(message, line["body"].get("seed")), n)
                )
                fault = re.search(r"fault=(\w+)", message)
                self._out_of_shape(body, fault.group(1) if fault else None)
                outputs.append(
                    {
                        "id": f"req_{custom_id}",
                        "custom_id": custom_id,
                        "response": {"status_code": 200, "request_id": "r", "body": body},
                        "error": None,
                    }
                )
                params = {k: v for k, v in line["body"].items() if k != "messages"}
                self.log.append(LogEntry(time.time(), "batch-request", message, 200, params=params))
        batch = entry["object"]
        for name, rows in (("output_file_id", outputs), ("error_file_id", errors)):
            if rows:
                file_id = f"file-{len(self.files) + 1}"
                self.files[file_id] = "".join(json.dumps(r) + "\n" for r in rows).encode() + b"not json\n"
                batch[name] = file_id
        batch["status"] = "expired" if expired else "completed"
        batch["request_counts"] = {"total": len(entry["lines"]), "completed": len(outputs), "failed": len(errors)}
