"""vLLM's own reasoning parsers for the in-process backends (vllm, ray), where `engine_args.reasoning_parser` names
one (deepseek_r1, qwen3, ...); without one, the inline `<think>` split. vLLM is imported only when a parser is
named."""

from __future__ import annotations

import types
from collections.abc import Callable
from typing import Any

from cotforge.builders.teachers.base import TeacherError
from cotforge.builders.teachers.reasoning import Separated, separate, separate_parsed
from cotforge.schemas.recipe import TeacherSpec

Splitter = Callable[[str], Separated]


def parser_name(spec: TeacherSpec) -> str | None:
    name = spec.engine_args.given().get("reasoning_parser")
    return str(name) if name else None


def _request(spec: TeacherSpec) -> Any:
    """What a parser reads of the chat request (some look at its chat_template_kwargs)."""
    kwargs = spec.extra_body.get("chat_template_kwargs")
    try:
        from vllm.entrypoints.openai.protocol import ChatCompletionRequest

        return ChatCompletionRequest(messages=[], model=spec.model, chat_template_kwargs=kwargs)
    except Exception:  # moved or renamed in this vLLM: the fields the parsers read are enough
        return types.SimpleNamespace(model=spec.model, chat_template_kwargs=kwargs)


def trace_splitter(spec: TeacherSpec, tokenizer: Callable[[], Any]) -> Splitter:
    """A function from an engine's output text to its answer and trace: vLLM's parser named in the spec (built with
    the tokenizer that `tokenizer()` loads), else the inline split."""
    name = parser_name(spec)
    if name is None:
        return separate
    try:
        from vllm.reasoning import ReasoningParserManager

        parser = ReasoningParserManager.get_reasoning_parser(name)(tokenizer())
    except Exception as error:  # an unknown name is a KeyError; an old vLLM has no vllm.reasoning
        raise TeacherError(
            f"teacher {spec.label}: engine_args.reasoning_parser {name!r}: vLLM cannot make it ({error})", usage=True
        ) from None
    extract = getattr(parser, "extract_reasoning", None) or parser.extract_reasoning_content  # renamed in vLLM 0.11
    request = _request(spec)
    return lambda text: separate_parsed(text, extract(text, request))
