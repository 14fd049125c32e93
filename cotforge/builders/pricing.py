"""Dollar cost of teacher tokens: a table of list prices for known OpenAI models, overridable per teacher."""

from __future__ import annotations

from cotforge.schemas.recipe import TeacherBackend, TeacherSpec
from cotforge.schemas.record import TokenUsage

# USD per million tokens (input, output), OpenAI list prices for standard processing.
PRICES_PER_MTOK: dict[str, tuple[float, float]] = {
    "gpt-4o": (2.50, 10.00),
    "gpt-4o-mini": (0.15, 0.60),
    "gpt-4.1": (2.00, 8.00),
    "gpt-4.1-mini": (0.40, 1.60),
    "gpt-4.1-nano": (0.10, 0.40),
    "gpt-4-turbo": (10.00, 30.00),
    "gpt-3.5-turbo": (0.50, 1.50),
    "o1": (15.00, 60.00),
    "o3": (2.00, 8.00),
    "o3-mini": (1.10, 4.40),
    "o4-mini": (1.10, 4.40),
}
BATCH_DISCOUNT = 0.5  # the Batch API bills half the standard price


def price_per_mtok(teacher: TeacherSpec) -> tuple[float, float] | None:
    """(input, output) USD per million tokens, or None when the price is unknown (a local or custom server)."""
    if teacher.input_price_per_mtok is not None and teacher.output_price_per_mtok is not None:
        return teacher.input_price_per_mtok, teacher.output_price_per_mtok
    if teacher.endpoint is not None or teacher.backend.in_process:
        return None  # a self-hosted model has no list price
    model = teacher.model
    # Dated snapshots ("gpt-4o-2024-08-06") cost what their family costs; the longest matching name wins.
    family = max(
        (name for name in PRICES_PER_MTOK if model == name or model.startswith(name + "-")), key=len, default=None
    )
    if family is None:
        return None
    input_price, output_price = PRICES_PER_MTOK[family]
    if teacher.backend is TeacherBackend.openai_batch:
        return input_price * BATCH_DISCOUNT, output_price * BATCH_DISCOUNT
    return input_price, output_price


def cost_usd(teacher: TeacherSpec, usage: TokenUsage) -> float | None:
    prices = price_per_mtok(teacher)
    if prices is None:
        return None
    return (usage.prompt_tokens * prices[0] + usage.completion_tokens * prices[1]) / 1e6
