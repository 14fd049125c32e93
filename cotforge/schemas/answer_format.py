"""Answers in a schema: a teacher asked to reply with a JSON object of a pydantic model (a custom prompt's
`answer_format`, a recipe's `answer_format`, a judge's verdict). Servers that take OpenAI's response_format get the
schema there (OpenAI json_schema; vLLM's and llama.cpp's guided decoding read the same field); every teacher also
reads it in the prompt. The reply is validated into the model; one that does not validate is a reason, never an
object with fields left None."""

from __future__ import annotations

import functools
import hashlib
import importlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model, model_validator

from cotforge.schemas.teachers import TeacherSpec

StructuredOutput = Literal["json_schema", "json_object", "prompt"]
STRUCTURED_OUTPUT_HELP = (
    "How the JSON schema is sent: response_format json_schema (OpenAI, vLLM, llama.cpp's llama-server), json_object "
    "with the schema (llama-cpp-python's server), or in the prompt alone (any server; in-process engines always)"
)
# The types a shorthand field map names ({answer: int, unit: str}) and a JSON schema's property types.
_SHORTHAND: dict[str, Any] = {
    "str": str,
    "int": int,
    "float": float,
    "bool": bool,
    "list[str]": list[str],
    "list[int]": list[int],
    "list[float]": list[float],
}
_JSON_TYPES: dict[str, Any] = {"string": str, "integer": int, "number": float, "boolean": bool, "object": dict}


def response_format(name: str, schema: dict[str, Any], structured_output: StructuredOutput) -> dict[str, Any] | None:
    """The response_format that asks a server for an object of `schema`; None: the prompt alone asks for it."""
    if structured_output == "json_schema":
        return {"type": "json_schema", "json_schema": {"name": name, "schema": schema}}
    if structured_output == "json_object":
        return {"type": "json_object", "schema": schema}
    return None


def asking_for(spec: TeacherSpec, found: dict[str, Any] | None, **update: Any) -> TeacherSpec:
    """The teacher with `found` (a response_format) in its requests' body, where its backend takes one; `update`:
    other fields to change."""
    if found is not None and spec.takes_response_format:
        update["extra_body"] = {**spec.extra_body, "response_format": found}
    return spec.model_copy(update=update) if update else spec


def parse_object(model: type[BaseModel], text: str | None) -> BaseModel | str:
    """The reply validated into `model`, or why it is not one (a sentence naming the field that is wrong)."""
    if not text or not text.strip():
        return "empty reply"
    body = text.strip().removeprefix("```json").removeprefix("```").removesuffix("```").strip()
    try:
        return model.model_validate_json(body)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        if first["type"].startswith("json"):
            return f"not a JSON object ({first['msg']})"
        return f"{where}: {first['msg']}" if where else first["msg"]


@dataclass(frozen=True)
class AnswerFormat:
    """The model a teacher's answer must validate into, and how its schema is sent."""

    model: type[BaseModel]
    structured_output: StructuredOutput = "json_schema"

    @functools.cached_property
    def schema(self) -> dict[str, Any]:
        return self.model.model_json_schema()

    @functools.cached_property
    def digest(self) -> str:
        """Eight hex digits of the schema: part of the prompt version, so another schema asks again."""
        text = json.dumps(self.schema, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:8]

    def instruction(self) -> str:
        """What the prompt says about the schema (every teacher reads it, structured output or not)."""
        schema = json.dumps(self.schema, separators=(",", ":"))
        return f"Reply with a JSON object and nothing else. Its JSON schema: {schema}"

    def teacher(self, spec: TeacherSpec) -> TeacherSpec:
        return asking_for(spec, response_format("answer", self.schema, self.structured_output))

    def parse(self, text: str | None) -> BaseModel | str:
        return parse_object(self.model, text)


class AnswerFormatSpec(BaseModel):
    """A recipe's answer format: `model` is a map of field names to types ({answer: int, unit: str}; str, int,
    float, bool, list[str], list[int], list[float]), a JSON schema (type: object, properties, required), or the
    dotted path of a pydantic model (mypackage.models:Answer). Its `answer` field is the final answer checked
    against gold; a `rationale` (text) or `steps` (list of text) field, where there is one, is the CoT. A bare map,
    schema or path stands for `model` alone."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str | dict[str, Any]
    structured_output: StructuredOutput = Field(default="json_schema", description=STRUCTURED_OUTPUT_HELP)

    @model_validator(mode="before")
    @classmethod
    def _bare(cls, data: Any) -> Any:
        if isinstance(data, str) or (isinstance(data, Mapping) and "model" not in data):
            return {"model": data}
        return data

    @model_validator(mode="after")
    def _resolves(self) -> AnswerFormatSpec:
        model = self.resolved().model
        if "answer" not in model.model_fields:
            raise ValueError(f"answer_format: the model has no 'answer' field (it has {', '.join(model.model_fields)})")
        return self

    def resolved(self) -> AnswerFormat:
        return AnswerFormat(_answer_model(json.dumps(self.model, sort_keys=True)), self.structured_output)


@functools.cache
def _answer_model(given: str) -> type[BaseModel]:
    """The model of a spec's `model`, as JSON (hashable, so each is made once); ValueError naming what is wrong."""
    found = json.loads(given)
    if isinstance(found, str):
        return _imported(found)
    if "properties" in found or found.get("type") == "object":
        return _from_json_schema(found)
    fields: dict[str, Any] = {}
    for name, kind in found.items():
        if not isinstance(kind, str) or kind not in _SHORTHAND:
            raise ValueError(f"answer_format.{name}: {kind!r} is not a type; give one of {', '.join(_SHORTHAND)}")
        fields[name] = (_SHORTHAND[kind], ...)
    return create_model("Answer", __config__=ConfigDict(extra="forbid"), **fields)


def _from_json_schema(schema: dict[str, Any]) -> type[BaseModel]:
    properties, required = schema.get("properties") or {}, schema.get("required") or []
    if not isinstance(properties, dict) or not properties:
        raise ValueError("answer_format: a JSON schema needs properties, one per field")
    if not isinstance(required, list) or not all(isinstance(name, str) for name in required):
        raise ValueError(f"answer_format: a JSON schema's required is a list of field names, not {required!r}")
    fields: dict[str, Any] = {}
    for name, prop in properties.items():
        kind = _json_type(name, prop if isinstance(prop, dict) else {})
        description = prop.get("description") if isinstance(prop, dict) else None
        default = ... if name in required else None
        fields[name] = (kind if name in required else kind | None, Field(default, description=description))
    return create_model("Answer", __config__=ConfigDict(extra="forbid"), **fields)


def _json_type(name: str, prop: dict[str, Any]) -> Any:
    if "enum" in prop:
        values = prop["enum"]
        scalars = isinstance(values, list) and all(isinstance(v, str | int | float | bool) for v in values)
        if not (scalars and values):
            raise ValueError(f"answer_format.{name}: enum is a non-empty list of strings or numbers, not {values!r}")
        return Literal[tuple(values)]
    kind = prop.get("type")
    if kind == "array":
        items = prop.get("items")
        return list[_json_type(f"{name}.items", items if isinstance(items, dict) else {})]  # type: ignore[misc]
    if not isinstance(kind, str) or kind not in _JSON_TYPES:
        raise ValueError(
            f"answer_format.{name}: JSON schema type {kind!r} is not one cotforge reads ({', '.join(_JSON_TYPES)}, "
            "array, enum); give a pydantic model's dotted path for more"
        )
    return _JSON_TYPES[kind]


def _imported(path: str) -> type[BaseModel]:
    module_name, _, name = path.rpartition(":") if ":" in path else path.rpartition(".")
    try:
        found = getattr(importlib.import_module(module_name), name) if module_name else None
    except (ImportError, AttributeError) as error:
        raise ValueError(f"answer_format: cannot import {path!r} ({error})") from None
    if not (isinstance(found, type) and issubclass(found, BaseModel)):
        raise ValueError(f"answer_format: {path!r} is not a pydantic model (give package.module:Model)")
    return found
