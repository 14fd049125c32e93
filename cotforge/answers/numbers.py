"""Numbers as teachers and students write them: commas, currency, signs, percent, fractions, Unicode fractions."""

from __future__ import annotations

import math
import re

NUMBER = re.compile(
    r"""(?P<sign>[-−])?\s*[$€£]?\s*
        (?P<int>\d{1,3}(?:,\d{3})+|\d+)?(?P<frac>\.\d+)?
        (?:\s*/\s*(?P<den>\d+(?:\.\d+)?))?""",
    re.VERBOSE,
)
_LATEX_FRAC = re.compile(r"\\[dt]?frac\s*\{\s*([-\d.,]+)\s*\}\s*\{\s*([-\d.,]+)\s*\}")
VULGAR_FRACTIONS = {
    "½": (1, 2), "⅓": (1, 3), "⅔": (2, 3), "¼": (1, 4), "¾": (3, 4), "⅕": (1, 5), "⅖": (2, 5), "⅗": (3, 5),
    "⅘": (4, 5), "⅙": (1, 6), "⅚": (5, 6), "⅛": (1, 8), "⅜": (3, 8), "⅝": (5, 8), "⅞": (7, 8),
}  # fmt: skip
_MIXED = re.compile(rf"(\d+)?\s*([{''.join(VULGAR_FRACTIONS)}])")
_VULGAR = frozenset(VULGAR_FRACTIONS)


def _vulgar_to_decimal(match: re.Match[str]) -> str:
    num, den = VULGAR_FRACTIONS[match.group(2)]
    return format_number(float(match.group(1) or 0) + num / den)  # float: int() refuses 4,300 digits and more


def _bounded(value: float) -> float | None:
    """A number a float holds, or None: a teacher's 400-digit answer is no number (it reads as infinity)."""
    return value if math.isfinite(value) else None


def parse_number(text: str) -> float | None:
    """The first number in `text`: commas, currency, percent, signs, decimals, a/b, \\frac{a}{b}, ¼ and 2½; None
    when there is none, or when it is too big for a float."""
    if text.isascii() and text.isdigit():  # the common gold answer, read without the regular expressions
        return _bounded(float(text))
    if "frac" in text:
        text = _LATEX_FRAC.sub(r"\1/\2", text)
    if not _VULGAR.isdisjoint(text):
        text = _MIXED.sub(_vulgar_to_decimal, text)
    for match in NUMBER.finditer(text):
        whole, frac = match.group("int"), match.group("frac")
        if whole is None and frac is None:
            continue
        value = float((whole or "0").replace(",", "") + (frac or ""))
        den = match.group("den")
        if den is not None:
            divisor = _bounded(float(den))
            if not divisor:
                return None
            value /= divisor
        value = _bounded(value)
        return None if value is None else (-value if match.group("sign") else value)
    return None


def last_number(text: str) -> float | None:
    """The last number in `text`, or None."""
    text = _MIXED.sub(_vulgar_to_decimal, text)
    numbers = [m for m in NUMBER.finditer(text) if m.group("int") or m.group("frac")]
    return parse_number(numbers[-1].group(0)) if numbers else None


def format_number(value: float) -> str:
    """Canonical text for a number: 145.0 -> '145', 0.5 -> '0.5' (and 'inf', never an OverflowError)."""
    if math.isfinite(value) and value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.10g}"
