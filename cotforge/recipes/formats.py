"""What a CoT format is, declared once: the prompt's guide and worked example, how a rationale splits into steps,
how long it runs, and how the dataset card names it. A new format is a CoTFormat value (schemas/recipe.py) and an
entry here, plus its tests (a test keeps the two lists equal)."""

from __future__ import annotations

from dataclasses import dataclass

from cotforge.schemas.recipe import CoTFormat


@dataclass(frozen=True)
class FormatSpec:
    guide: str  # the system prompt's paragraph that asks for the format
    example: str | None  # the math demonstration at level 3 in this format; None for plain cot (the demo itself)
    card: str  # how the dataset card names it
    length: float  # completion length relative to plain cot, in the paper's GPT-4o SVAMP data (cost estimates)
    step_split: str | None = None  # a regex that cuts a rationale into its steps
    split_first: bool = False  # the regex goes before line and number splitting (else it is the last resort)


FORMATS: dict[CoTFormat, FormatSpec] = {
    CoTFormat.cot: FormatSpec(
        guide="Format: plain step-by-step reasoning in natural language.",
        example=None,
        card="`cot` (plain steps)",
        length=1.0,
    ),
    CoTFormat.subquestions: FormatSpec(
        guide=(
            "Format: sub-question decomposition. Break the problem into sub-questions; write each sub-question, "
            "followed by its answer, in order, each answer building on the ones before."
        ),
        example=(
            "What is the initial population? The initial population is 684 people. How many people did the 25% "
            "increase add? 684 * 0.25 = 171 people. What was the new population? 684 + 171 = 855 people. How many "
            "people moved away? 40% of 855 is 855 * 0.4 = 342 people. What is the current population? 855 - 342 = "
            "513 people."
        ),
        card="`subquestions`",
        length=1.5,
        step_split=r"(?<=[.!])\s+(?=[^.!?]*\?)",  # before each sentence that asks
        split_first=True,
    ),
    CoTFormat.rar: FormatSpec(
        guide=(
            "Format: rephrase and respond. First restate the question in your own words, making every given fact "
            "and what is asked explicit; then solve it step by step."
        ),
        example=(
            "Youngsville started with 684 residents. Its population first grew by 25% of that number, and "
            "afterwards 40% of the grown population left the town. We need the number of people living there now. "
            "Initial population: 684 people. Population increased by 25%: 684 * 0.25 = 171 people. New "
            "population: 684 + 171 = 855 people. 40% of population moved away: 855 * 0.4 = 342 people. Remaining "
            "population: 855 - 342 = 513 people."
        ),
        card="`rar` (rephrase and respond)",
        length=1.6,
    ),
    CoTFormat.symbolic: FormatSpec(
        guide=(
            "Format: symbolic reasoning. Name each quantity or fact with a variable, then reason with equations "
            "and logical symbols (=, ÷, ×, ∃, ∀, ∴, ∧, ¬) rather than prose."
        ),
        example=(
            "Let P0 = 684 (initial population). Let g = 0.25, d = 0.40. ∃ P1 = P0 + g × P0 = 684 + 171 = 855. ∃ L "
            "= d × P1 = 855 × 0.4 = 342. ∴ P2 = P1 - L = 855 - 342 = 513."
        ),
        card="`symbolic`",
        length=0.9,
        step_split=r"\s*(?=∴|∃|∀)|;\s*",  # at each quantifier, conclusion or semicolon
    ),
}
