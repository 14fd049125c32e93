"""The dataset card's text, one piece: render_card (card.py) fills its fields with str.format."""

CARD_TEMPLATE = """---
{header}---

# {pretty_name}

Chain-of-thought (CoT) rationales written by teacher models for distilling reasoning into small language models,
built with cotforge following the data-centric study of
[arXiv:2502.18001](https://arxiv.org/abs/2502.18001). Each subset is one teacher x granularity level x CoT format
(`<teacher>-g<level>-<format>`): levels run from 1 (the bare operation) to 6 (every step explained and checked),
0 is the answer alone; formats are {formats}. Every rationale ends in `The answer is X`,
checked against the source's gold answer (`correct`).{arms_note}
{notice}{rejected}
## Subsets

{subsets_table}
{plot}
{signals}
{suitability}
{judge}
## Use

```python
from datasets import load_dataset

ds = load_dataset("{repo_id}", "{first}", split="train")
print(ds[0]["prompt"], ds[0]["completion"])      # or ds[0]["messages"] (chat format)
```

Train a small student with cotforge's SFT trainer:

```bash
cotforge train --dataset {repo_id} --subset {first} --model HuggingFaceTB/SmolLM2-135M-Instruct
```

Or with TRL, which trains on the `prompt`/`completion` columns as they are, with the loss on the completion only
(this works with any causal model, chat template or not):

```python
from datasets import load_dataset
from trl import SFTConfig, SFTTrainer

train = load_dataset("{repo_id}", "{first}", split="train").select_columns(["prompt", "completion"])
SFTTrainer(model="HuggingFaceTB/SmolLM2-135M-Instruct", train_dataset=train,
           args=SFTConfig(output_dir="student", completion_only_loss=True)).train()
```

## Fields

`question`, `choices`, `gold_answer`, `answer_type`, `rationale`, `steps`, `predicted_answer`, `correct`; the teacher
(`teacher`, `teacher_model`), `granularity`, `format`, `prompt_mode` (blind or gold-hinted), `prompt_version` (hash of
the prompt template), `messages_sent`, `sampling`, `finish_reason`, `usage`, `cost_usd`, `latency_s`; training views
`messages`, `prompt`, `completion`.

`reasoning` holds a reasoning teacher's trace (its thinking before the answer, returned apart from it or in
`<think>` tags), and `reasoning_tokens` the tokens the teacher reported for it; both are empty for teachers that do
not think. The trace is never part of `rationale`, and the final answer was read after it, never from inside it.
The training views hold the rationale alone; to train on the trace as well, put it in `<think>` tags before the
completion, or use `cotforge export --reasoning keep`.

## Samples

{samples}

## How it was made

{recipe}{coverage}

## Contamination

{contamination}

## License

{licence}

## Citation

```bibtex
{bibtex}
```

Source data sets:
{citations}
"""
