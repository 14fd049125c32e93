"""Dollar cost of teacher tokens: each backend's list price (cotforge.schemas.teachers), overridable per teacher."""

from __future__ import annotations

from cotforge.schemas.record import TokenUsage
from cotforge.schemas.teachers import TeacherSpec


def price_per_mtok(teacher: TeacherSpec) -> tuple[float, float] | None:
    """(input, output) USD per million tokens, or None when the price is unknown (a local or custom server)."""
    if teacher.input_price_per_mtok is not None and teacher.output_price_per_mtok is not None:
        return teacher.input_price_per_mtok, teacher.output_price_per_mtok
    return teacher.list_price()


def cost_usd(teacher: TeacherSpec, usage: TokenUsage) -> float | None:
    prices = price_per_mtok(teacher)
    if prices is None:
        return None
    return (usage.prompt_tokens * prices[0] + usage.completion_tokens * prices[1]) / 1e6
