"""The OpenAI Batch API: half the price, answers within a day; batch ids are stored, so a killed run resumes."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from cotforge.schemas.teachers.base import RemoteTeacherBase, list_price
from cotforge.schemas.teachers.openai import PRICES_PER_MTOK

BATCH_DISCOUNT = 0.5  # the Batch API bills half the standard price


class OpenAIBatchTeacherSpec(RemoteTeacherBase):
    """The OpenAI Batch API: half the price, answers within a day; batch ids are stored, so a killed run resumes."""

    client: ClassVar[str] = "cotforge.builders.teachers.openai_batch:OpenAIBatchTeacher"
    takes_response_format: ClassVar[bool] = True

    backend: Literal["openai-batch"] = "openai-batch"
    batch_poll_s: float = Field(default=30.0, gt=0, description="Seconds between polls of a batch")

    def list_price(self) -> tuple[float, float] | None:
        prices = None if self.base_url is not None else list_price(self.model, PRICES_PER_MTOK)
        return None if prices is None else (prices[0] * BATCH_DISCOUNT, prices[1] * BATCH_DISCOUNT)
