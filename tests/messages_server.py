"""A scripted Anthropic Messages API server (POST /v1/messages): the scripted OpenAI server's replies, faults and
shapes (tests/scripted_server.py), given as Messages replies. A trace in a field of its own becomes a thinking block.
`mangle=X` in the last user message makes every reply to it hostile in one field: X is `blockstr` (a content
block that is a string), `textint` (a text block whose text is a number), `notype` (a block without a type),
`nocontent` (no content list), `badusage` (token counts out of range), `stopint` (stop_reason a number), or
`tooluse` (a tool_use block besides the text, which is not read)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from .scripted_server import ScriptedServer

STOP_REASONS = {"stop": "end_turn", "length": "max_tokens"}


@dataclass
class MessagesServer(ScriptedServer):
    headers_seen: list[dict[str, str]] = field(default_factory=list)

    def make_app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v1/messages", self.messages)
        return app

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"  # the Messages API's base URL comes before /v1

    async def messages(self, request: web.Request) -> web.StreamResponse:
        self.headers_seen.append({name: request.headers.get(name, "") for name in ("x-api-key", "anthropic-version")})
        response = await self.chat(request)  # the OpenAI handler reads the same messages list
        try:
            completion = json.loads(response.body)  # type: ignore[arg-type]
        except ValueError:
            return response  # a scripted fault: bad JSON
        if response.status != 200:
            return response
        body = await request.json()
        reply = _message(completion)
        mangled = re.search(r"mangle=(\w+)", self._last_user(body))
        if mangled:
            _mangle(reply, mangled.group(1))
        return web.json_response(reply)


def _message(completion: dict[str, Any]) -> dict[str, Any]:
    (choice,) = completion["choices"]
    message = choice["message"]
    trace = next((message[name] for name in ("reasoning_content", "reasoning", "thinking") if name in message), None)
    blocks: list[dict[str, Any]] = [{"type": "thinking", "thinking": trace, "signature": "sig"}] if trace else []
    blocks.append({"type": "text", "text": message["content"] or ""})
    usage = completion["usage"]
    return {
        "id": "msg_scripted",
        "type": "message",
        "role": "assistant",
        "model": completion["model"],
        "content": blocks,
        "stop_reason": STOP_REASONS.get(choice["finish_reason"], choice["finish_reason"]),
        "usage": {"input_tokens": usage["prompt_tokens"], "output_tokens": usage["completion_tokens"]},
    }


def _mangle(reply: dict[str, Any], how: str) -> None:
    text = reply["content"][-1]
    if how == "blockstr":
        reply["content"][-1] = text["text"]
    elif how == "textint":
        text["text"] = 5
    elif how == "notype":
        del text["type"]
    elif how == "nocontent":
        reply["content"] = {"text": text["text"]}
    elif how == "badusage":
        reply["usage"] = {"input_tokens": -3, "output_tokens": 2**64}
    elif how == "stopint":
        reply["stop_reason"] = 7
    elif how == "tooluse":
        reply["content"].append({"type": "tool_use", "id": "t1", "name": "calc", "input": {}})
