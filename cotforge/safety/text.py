"""Text from outside (a teacher's answer, a server's error) made safe to store: no lone surrogates, no NULs."""

from __future__ import annotations

import re

REPLACEMENT = "\ufffd"
_UNSTORABLE = re.compile(r"[\ud800-\udfff\x00]")


def unstorable(text: str) -> str | None:
    """Why `text` cannot be stored as it is (lone surrogates, NUL characters), or None when it can."""
    found = _UNSTORABLE.findall(text)
    if not found:
        return None
    nuls = found.count("\x00")
    kinds = [f"{len(found) - nuls} lone surrogate(s)" if len(found) > nuls else "", f"{nuls} NUL(s)" if nuls else ""]
    first = _UNSTORABLE.search(text)
    assert first is not None
    return f"the text holds {' and '.join(k for k in kinds if k)} (first at character {first.start()})"


def storable(text: str) -> str:
    """`text` with each lone surrogate and NUL replaced by U+FFFD, so it can be encoded and stored."""
    return _UNSTORABLE.sub(REPLACEMENT, text)
