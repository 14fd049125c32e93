"""Batched greedy evaluation: answers come back in the order of the questions, whatever order the batches run in."""

from __future__ import annotations

from pathlib import Path

from cotforge.train.evaluate import _generate_transformers
from cotforge.train.student import load_tokenizer


def test_length_sorted_batches_return_answers_in_the_questions_order(student: Path) -> None:
    tokenizer = load_tokenizer(str(student))
    # Lengths out of order, so sorting longest first moves every prompt to another batch position.
    texts = ["Two", "How many apples are left over now", "Tom has five", "A b c d e f g h i j k l", "Yes no"]
    prompts = [tokenizer(text)["input_ids"] for text in texts]
    assert len({len(p) for p in prompts}) == len(prompts)
    one_by_one = [_generate_transformers(str(student), tokenizer, [p], 6, 1, None)[0] for p in prompts]
    batched = _generate_transformers(str(student), tokenizer, prompts, 6, 2, None)
    assert len(set(one_by_one)) > 1, "each prompt has its own answer, so a misplaced one would show"
    assert batched == one_by_one
