"""TRL's SFTTrainer on the same student, data and hyper-parameters; prints its metrics as JSON.

Layout (the last argument): `padded` (TRL's default: each example a row, padded to the batch's longest) or
`padding-free` (`packing=True`, TRL's best-fit-decreasing packing into rows of max_length, which turns its padding-
free collator on: the batch's rows flattened into one row with restarting position ids, what a TRL user on a GPU
with flash-attention turns on)."""

from __future__ import annotations

import json
import resource
import sys
import time

from datasets import load_dataset
from trl import SFTConfig, SFTTrainer

model, data, out, steps, batch, max_length, lr, seed, layout = sys.argv[1:10]
train = load_dataset("json", data_files=data, split="train")
args = SFTConfig(
    output_dir=out,
    max_steps=int(steps),
    per_device_train_batch_size=int(batch),
    gradient_accumulation_steps=1,
    learning_rate=float(lr),
    lr_scheduler_type="cosine",
    warmup_steps=0,
    max_length=int(max_length),
    seed=int(seed),
    logging_steps=1,
    save_strategy="no",
    report_to=[],
    bf16=False,
    use_cpu=True,
    completion_only_loss=True,
    dataloader_num_workers=0,
    gradient_checkpointing=False,  # as in cotforge's run (SFTConfig turns it on by default)
    packing=layout == "padding-free",
)
trainer = SFTTrainer(model=model, train_dataset=train, args=args)
completion = [sum(label != -100 for label in labels) for labels in trainer.train_dataset["labels"]]
started = time.monotonic()
trainer.train()
seconds = time.monotonic() - started
logs = [entry for entry in trainer.state.log_history if "loss" in entry]
tokens = logs[-1].get("num_tokens", 0)
print(
    json.dumps(
        {
            "seconds": seconds,
            "tokens": tokens,
            "completion_tokens": sum(completion) / len(completion) * int(steps) * int(batch),
            "losses": [entry["loss"] for entry in logs],
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        }
    )
)
