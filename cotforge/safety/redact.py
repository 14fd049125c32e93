"""Secrets out of what is stored or printed: credentials in URLs, key-like path segments and query values, and
values of fields whose name or content looks secret."""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

HIDDEN = "***"
_KEY_LIKE = re.compile(r"\b(?:sk|hf|api|key|pk|rk|ghp|gho|xox[abp])[-_][A-Za-z0-9_\-*]{6,}", re.IGNORECASE)
_SECRET_NAME = re.compile(r"key|token|secret|passw|credential|auth|signature|^sig$", re.IGNORECASE)
_URL = re.compile(r"https?://[^\s'\"<>]*[^\s'\"<>.,:;)\]]")  # without the sentence's punctuation after it


def looks_like_key(text: str) -> bool:
    """A key-shaped string: a known key prefix, or a long run of letters and digits both (not a word, a
    version or a host name)."""
    if _KEY_LIKE.fullmatch(text):
        return True
    return (
        len(text) >= 24
        and re.fullmatch(r"[A-Za-z0-9_\-]+", text) is not None
        and (re.search(r"[A-Za-z]", text) is not None and re.search(r"\d", text) is not None)
    )


def secret_field(name: str) -> bool:
    """A field whose value is a secret by its name (api_key, token, ...); `*_env` names a variable, not a value."""
    return bool(_SECRET_NAME.search(name)) and not name.lower().endswith("_env")


def redact_url(url: str) -> str:
    """`url` with its user info, key-like path segments and secret query values replaced by ***."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return HIDDEN
    netloc = parts.netloc
    if "@" in netloc:
        netloc = f"{HIDDEN}@{netloc.rsplit('@', 1)[1]}"
    path = "/".join(HIDDEN if looks_like_key(segment) else segment for segment in parts.path.split("/"))
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        query = urlencode([(k, HIDDEN if secret_field(k) or looks_like_key(v) else v) for k, v in pairs], safe="*")
    return urlunsplit((parts.scheme, netloc, path, query, parts.fragment))


def redact_text(text: str) -> str:
    """Every URL in `text` redacted, and anything shaped like a key hidden."""
    text = _URL.sub(lambda match: redact_url(match.group(0)), text)
    return _KEY_LIKE.sub(HIDDEN, text)


def shown_value(field: str, value: object) -> str | None:
    """How a validation error may show `value` of `field`: None when the field's name looks secret, the value
    redacted otherwise."""
    if any(secret_field(part) for part in re.split(r"[.\[\]]", field) if part):
        return None
    if isinstance(value, str):
        redacted = redact_text(value)
        return None if redacted != value and not _URL.search(value) else repr(redacted)
    return repr(value)
