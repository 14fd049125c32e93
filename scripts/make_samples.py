"""Write the built-in samples (cotforge/recipes/samples/*.jsonl) in each data set's Hub schema.

Run once by a developer, from a checkout with the founders' ../shared beside it:
    python scripts/make_samples.py ../shared/data
The rows are the paper's flattened copies (EIT-NLP/Distilling-CoT-Reasoning, Apache-2.0) of the original data sets,
put back into the Hub schemas. Fields the flattened copies lost are rebuilt or left empty, as SAMPLES.md says.
Nothing in cotforge reads ../shared at run or test time.
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
from pathlib import Path

N = 30
OUT = Path(__file__).resolve().parent.parent / "cotforge" / "recipes" / "samples"
QUESTION_START = re.compile(r"^(.*)\s+((?:How|What|Which|Who|Find|Calculate)\b[^.!?]*\?)\s*$", re.DOTALL)
CHOICES = re.compile(r"([A-E]): (.*?)(?=, [A-E]: |$)")
# The first row of openai/gsm8k train (MIT licence), which keeps a worked solution with calculator notes.
GSM8K_FIRST = {
    "question": "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. "
    "How many clips did Natalia sell altogether in April and May?",
    "answer": "Natalia sold 48/2 = <<48/2=24>>24 clips in May.\nNatalia sold 48+24 = <<48+24=72>>72 clips "
    "altogether in April and May.\n#### 72",
}


def load(path: Path) -> list[dict]:
    return json.loads(path.read_text(encoding="utf-8"))


def short_hash(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()[:8]


def svamp(data: Path) -> list[dict]:
    gold = load(data / "eit-nlp-svamp" / "SVAMP_only_ans.json")
    human = {r["instruction"]: r["output"] for r in load(data / "eit-nlp-svamp" / "svamp_human_annotation.json")}
    ops = {"+": "Addition", "-": "Subtraction", "*": "Multiplication", "/": "Common-Division"}
    rows = []
    for i, row in enumerate(gold):
        match = QUESTION_START.match(row["instruction"].strip())
        equation = human[row["instruction"]].split(" = ")[0]
        op = next((ops[c] for c in equation if c in ops), "Addition")
        if match is None:
            continue
        rows.append(
            {
                "ID": f"chal-{i + 1}",
                "Body": match.group(1).strip(),
                "Question": match.group(2).strip(),
                "Equation": f"( {equation} )",
                "Answer": float(row["output"]),
                "Type": op,
                "question_concat": row["instruction"].strip(),
            }
        )
    return rows[:N]


def gsm8k(data: Path) -> list[dict]:
    rows = [GSM8K_FIRST]
    for row in load(data / "eit-nlp-samples" / "gsm_train_onlyans.json"):
        # The flattened copy kept only the gold number; the worked solution is not in it.
        rows.append({"question": row["instruction"], "answer": f"#### {row['output']}"})
    return rows[:N]


def aqua(data: Path) -> list[dict]:
    rows = []
    for row in load(data / "eit-nlp-samples" / "aqua_human.json"):
        question, _, options = row["instruction"].partition(" Answer Choices: ")
        parts = re.findall(r"\(([A-E])\)\s*(.*?)(?=\s*\([A-E]\)|$)", options)
        rationale, _, answer = row["output"].rpartition("The answer is ")
        if len(parts) != 5:
            continue
        rows.append(
            {
                "question": question.strip(),
                "options": [f"{label}){text.strip()}" for label, text in parts],
                "rationale": rationale.strip(),
                "correct": answer.strip()[0],
            }
        )
    return rows[:N]


def math(data: Path) -> list[dict]:
    rows = []
    for row in load(data / "eit-nlp-samples" / "math_human.json"):
        solution = row["solution"]
        if "\\boxed" not in solution:
            # The flattened copy stores the gold in `output`; the Hub solution carries it boxed, so box it again.
            solution = f"{solution} The answer is $\\boxed{{{row['output']}}}$."
        rows.append({"problem": row["problem"], "level": row["level"], "type": row["type"], "solution": solution})
    return rows[:N]


def multiple_choice(path: Path, question_key: str) -> list[dict]:
    rows = []
    for row in load(path):
        question, _, listed = row["instruction"].removeprefix("Q: ").partition(" Answer choices: ")
        pairs = CHOICES.findall(listed)
        choice = {"text": [t for _, t in pairs], "label": [label for label, _ in pairs]}
        rows.append(
            {
                "id": short_hash(row["instruction"]),
                question_key: question.strip(),
                "choices": choice,
                "answerKey": row["output"].strip(),
            }
        )
    return rows[:N]


def strategyqa(data: Path) -> list[dict]:
    rows = []
    for row in load(data / "eit-nlp-samples" / "stqa_human_annotation.json"):
        facts_text, _, answer = row["output"].rpartition("The answer is ")
        facts = [f.strip() + "." for f in facts_text.strip().rstrip(".").split(". ") if f.strip()]
        rows.append(
            {
                "qid": short_hash(row["instruction"]),
                "term": "",
                "description": "",
                "question": row["instruction"],
                "answer": answer.strip() == "True",
                "facts": facts,
                "decomposition": [],
            }
        )
    return rows[:N]


def main(data: Path) -> None:
    samples = {
        "svamp": svamp(data),
        "gsm8k": gsm8k(data),
        "aqua": aqua(data),
        "math": math(data),
        "csqa": [
            dict(r, question_concept="")
            for r in multiple_choice(data / "eit-nlp-samples" / "commonsenseQA_onlyans.json", "question")
        ],
        "obqa": multiple_choice(data / "eit-nlp-samples" / "openbookQA_onlyans.json", "question_stem"),
        "strategyqa": strategyqa(data),
    }
    OUT.mkdir(parents=True, exist_ok=True)
    for name, rows in samples.items():
        with (OUT / f"{name}.jsonl").open("w", encoding="utf-8") as out:
            for row in rows:
                out.write(json.dumps(row, ensure_ascii=False) + "\n")
        print(f"{name}: {len(rows)} rows")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "../shared/data"))
