"""LaTeX answers (the MATH data set): \\boxed{}, text and unit wrappers, Unicode math, and JSON escape damage."""

from __future__ import annotations

import re

from cotforge.answers.numbers import VULGAR_FRACTIONS

# A JSON writer that did not escape backslashes turns "\frac" into a form feed + "rac", "\text" into a tab + "ext",
# "\boxed" into a backspace + "oxed". Each control character is repaired only where the letters after it complete a
# LaTeX command, followed by a non-letter: then the intent is unambiguous.
_DAMAGED_COMMANDS = {
    "\f": ("frac", "forall"),
    "\t": ("text", "textbf", "times", "theta", "tan", "tau", "tfrac", "triangle", "to"),
    "\b": ("boxed", "beta", "bar", "binom", "begin", "bmod", "bigl", "bigr"),
    "\a": ("alpha", "approx", "angle"),
    "\v": ("vec", "varphi", "vee"),
    "\r": ("rho", "right", "rangle", "rfloor", "rceil"),
    "\n": ("neq", "nabla"),
}
_DAMAGE = re.compile(
    "|".join(
        rf"{re.escape(char)}({'|'.join(sorted((c[1:] for c in commands), key=len, reverse=True))})(?![a-zA-Z])"
        for char, commands in _DAMAGED_COMMANDS.items()
    )
)
_FIRST_LETTER = {char: commands[0][0] for char, commands in _DAMAGED_COMMANDS.items()}


def repair_control_chars(text: str) -> str:
    """Undo JSON escape damage to LaTeX commands: '\\x0crac{1}{2}' -> '\\frac{1}{2}', '\\timesext{cm}'..."""
    if not any(char in text for char in _DAMAGED_COMMANDS):
        return text
    return _DAMAGE.sub(lambda m: "\\" + _FIRST_LETTER[m.group(0)[0]] + m.group(0)[1:], text)


def last_boxed(text: str) -> str | None:
    """The content of the last \\boxed{...} (or \\fbox{...}), with nested braces."""
    start = max(text.rfind("\\boxed"), text.rfind("\\fbox"))
    if start < 0:
        return None
    open_at = text.find("{", start)
    if open_at < 0:
        return None
    depth = 0
    for i in range(open_at, len(text)):
        if text[i] == "{":
            depth += 1
        elif text[i] == "}":
            depth -= 1
            if depth == 0:
                return text[open_at + 1 : i].strip()
    return None


def braces_balanced(text: str) -> bool:
    depth = 0
    for char in text:
        depth += (char == "{") - (char == "}")
        if depth < 0:
            return False
    return depth == 0


_UNICODE_SYMBOLS = {"π": "\\pi", "×": "\\times", "÷": "\\div", "−": "-", "≤": "\\le", "≥": "\\ge", "≠": "\\ne",
                    "∞": "\\infty", "·": "\\cdot", "°": "^\\circ", "√": "\\sqrt"}  # fmt: skip
_ROOT = re.compile(r"√\s*(?:\(([^()]*)\)|\{([^{}]*)\}|(\d+(?:\.\d+)?|[a-zA-Z]))")


def unicode_math_to_latex(text: str) -> str:
    """'2√5' -> '2\\sqrt{5}', '¼' -> '\\frac{1}{4}', 'π' -> '\\pi'."""
    text = _ROOT.sub(lambda m: "\\sqrt{" + next(g for g in m.groups() if g is not None) + "}", text)
    for char, (num, den) in VULGAR_FRACTIONS.items():
        text = text.replace(char, f"\\frac{{{num}}}{{{den}}}")
    for char, latex in _UNICODE_SYMBOLS.items():
        text = text.replace(char, latex)
    return text


_TEXT_WRAPPER = r"\\(?:text|textbf|textit|mathrm|mathbf|mbox|operatorname)\s*\{([^{}]*)\}"
_UNIT_AFTER_NUMBER = re.compile(r"(\d\}?)\s*" + _TEXT_WRAPPER)
_PLAIN_UNITS = re.compile(
    r"^(-?(?:\d[\d,]*\.?\d*|\\frac\{[^{}]+\}\{[^{}]+\}|\\sqrt\{[^{}]+\})+)(?:\s*(?!pi\b)[a-zA-Z]{2,}\.?)+$"
)
_LETTER_IN_PARENS = re.compile(r"\(([A-Za-z])\)")


def normalise_expression(segment: str) -> str:
    """A MATH answer as compared by string: boxed content, no $ or \\$, no \\left/\\right or spacing, units after a
    number dropped ('114 square units', '5\\text{ cm}'), other \\text{} unwrapped ('\\text{Tuesday}')."""
    text = unicode_math_to_latex(repair_control_chars(segment))
    boxed = last_boxed(text)
    text = boxed if boxed is not None else text
    text = text.replace("\\$", "").replace("$", "")
    for old, new in (("\\left", ""), ("\\right", ""), ("\\!", ""), ("\\,", ""), ("\\;", ""), ("\\ ", " ")):
        text = text.replace(old, new)
    text = text.replace("^{\\circ}", "").replace("^\\circ", "").replace("\\%", "").replace("%", "")
    text = text.replace("\\dfrac", "\\frac").replace("\\tfrac", "\\frac")
    text = _UNIT_AFTER_NUMBER.sub(r"\1", text)
    text = re.sub(_TEXT_WRAPPER, r"\1", text).strip().rstrip(".").strip()
    text = _PLAIN_UNITS.sub(r"\1", text)
    text = _LETTER_IN_PARENS.sub(r"\1", text)
    return re.sub(r"\s+", "", text)
