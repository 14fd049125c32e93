"""YAML from a user or a repo (a recipe, its guides, a repo card's header) read as plain data: no objects (the safe
loader), no key given twice, and no aliases. An alias makes a value of a value already read, so a few hundred bytes
of nested aliases stand for billions of values, which a dry run then copies for minutes and gigabytes; plain
configuration never needs one, so refusing them costs nothing."""

from __future__ import annotations

from typing import Any

import yaml


class YamlError(ValueError):
    """YAML that is not plain data; the message says where (line, column) and why, never the text around it."""


class _PlainDataLoader(yaml.SafeLoader):
    def compose_node(self, parent: yaml.Node | None, index: object) -> yaml.Node | None:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.composer.ComposerError(
                None,
                None,
                f"the alias *{event.anchor} is refused: write the value out (aliases and '<<' merges are not read)",
                event.start_mark,
            )
        return super().compose_node(parent, index)  # type: ignore[arg-type]

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    "while reading a mapping", node.start_mark, f"key {key!r} is given twice", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def load_plain_yaml(text: str) -> Any:
    """`text` as Python data; YamlError names the line and column of an alias, a repeated key, a tag such as
    `!!python/object` or a syntax error."""
    try:
        return yaml.load(text, Loader=_PlainDataLoader)  # a SafeLoader subclass: no arbitrary objects
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise YamlError(f"{where}not valid YAML: {getattr(error, 'problem', None) or error}") from None
