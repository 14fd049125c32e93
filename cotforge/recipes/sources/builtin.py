"""The seven data sets of arXiv 2502.18001, each read from its Hub schema into Problems."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from cotforge.answers import CHOICE_LABELS, AnswerType, format_number, last_boxed, parse_number
from cotforge.schemas.problem import Problem

Row = Mapping[str, Any]


def content_id(dataset: str, split: str, text: str) -> str:
    """A stable id for rows that carry none: it follows the question, not the row's position."""
    return f"{dataset}-{split}-{hashlib.sha1(text.encode()).hexdigest()[:12]}"


def _labelled_choices(choices: Row) -> tuple[list[str], list[str]]:
    """Hub {'label': [...], 'text': [...]} choices, in label order."""
    pairs = sorted(zip(choices["label"], choices["text"], strict=False))
    return [label for label, _ in pairs], [text for _, text in pairs]


def _choice_answer(labels: list[str], answer_key: str) -> str:
    """Map the data set's own label (A-E, or 1-4 in some OpenBookQA rows) to our A, B, C... position."""
    if answer_key not in labels:
        raise ValueError(f"answerKey {answer_key!r} is not among the labels {labels}")
    return CHOICE_LABELS[labels.index(answer_key)]


def gsm8k(row: Row, split: str) -> Problem:
    solution, sep, gold = row["answer"].rpartition("####")
    if not sep:
        raise ValueError("answer has no '####' line")
    return Problem(
        id=content_id("gsm8k", split, row["question"]),
        dataset="gsm8k",
        split=split,
        question=row["question"],
        answer=format_number(_number(gold)),
        answer_type=AnswerType.number,
        human_rationale=solution.strip() or None,
    )


def _number(text: str) -> float:
    value = parse_number(str(text))
    if value is None:
        raise ValueError(f"gold answer {text!r} is not a number")
    return value


def svamp(row: Row, split: str) -> Problem:
    question = row.get("question_concat") or f"{row['Body'].strip()} {row['Question'].strip()}"
    answer = format_number(_number(row["Answer"]))
    equation = str(row.get("Equation") or "").strip()
    return Problem(
        id=f"svamp-{split}-{row['ID']}",
        dataset="svamp",
        split=split,
        question=question,
        answer=answer,
        answer_type=AnswerType.number,
        human_rationale=f"{equation} = {answer}" if equation else None,
    )


def aqua(row: Row, split: str) -> Problem:
    texts = []
    for i, option in enumerate(row["options"]):
        label, sep, text = option.partition(")")
        if not sep or label.strip() != CHOICE_LABELS[i]:
            raise ValueError(f"option {option!r} should start with '{CHOICE_LABELS[i]})'")
        texts.append(text.strip())
    return Problem(
        id=content_id("aqua", split, row["question"] + "".join(row["options"])),
        dataset="aqua",
        split=split,
        question=row["question"],
        choices=texts,
        answer=row["correct"].strip(),
        answer_type=AnswerType.choice,
        human_rationale=(row.get("rationale") or "").strip() or None,
    )


def math(row: Row, split: str) -> Problem:
    gold = last_boxed(row["solution"])
    if gold is None:
        raise ValueError("solution has no \\boxed{} answer")
    return Problem(
        id=content_id("math", split, row["problem"]),
        dataset="math",
        split=split,
        question=row["problem"],
        answer=gold,
        answer_type=AnswerType.expression,
        human_rationale=row["solution"],
    )


def _labelled_choice_problem(row: Row, split: str, dataset: str, question_key: str) -> Problem:
    """CommonsenseQA and OpenBookQA: choices as {label, text}, gold as `answerKey`."""
    labels, texts = _labelled_choices(row["choices"])
    return Problem(
        id=f"{dataset}-{split}-{row['id']}",
        dataset=dataset,
        split=split,
        question=row[question_key],
        choices=texts,
        answer=_choice_answer(labels, row["answerKey"]),
        answer_type=AnswerType.choice,
    )


def commonsense_qa(row: Row, split: str) -> Problem:
    return _labelled_choice_problem(row, split, "csqa", "question")


def openbookqa(row: Row, split: str) -> Problem:
    return _labelled_choice_problem(row, split, "obqa", "question_stem")


def strategyqa(row: Row, split: str) -> Problem:
    answer = row["answer"]
    if not isinstance(answer, bool):
        raise ValueError(f"answer must be a boolean, got {answer!r}")
    facts = row.get("facts") or []
    return Problem(
        id=f"strategyqa-{split}-{row['qid']}",
        dataset="strategyqa",
        split=split,
        question=row["question"],
        answer=str(answer),
        answer_type=AnswerType.boolean,
        human_rationale=" ".join(f.strip() for f in facts) or None,
    )


@dataclass(frozen=True)
class BuiltinSource:
    name: str
    hub_id: str
    configs: tuple[str | None, ...]  # several: the data set is the union of these configs
    columns: frozenset[str]  # what the converter needs; checked before the first row
    answer_type: AnswerType
    to_problem: Callable[[Row, str], Problem]
    citation: str
    license: str  # the Hub licence id of the source data set


_MATH_SUBJECTS = (
    "algebra",
    "counting_and_probability",
    "geometry",
    "intermediate_algebra",
    "number_theory",
    "prealgebra",
    "precalculus",
)

BUILTIN_SOURCES: dict[str, BuiltinSource] = {
    s.name: s
    for s in (
        BuiltinSource(
            "gsm8k",
            "openai/gsm8k",
            ("main",),
            frozenset({"question", "answer"}),
            AnswerType.number,
            gsm8k,
            "Cobbe et al., Training Verifiers to Solve Math Word Problems, arXiv:2110.14168, 2021",
            "mit",
        ),
        BuiltinSource(
            "svamp",
            "ChilleD/SVAMP",
            (None,),
            frozenset({"ID", "Body", "Question", "Answer"}),
            AnswerType.number,
            svamp,
            "Patel et al., Are NLP Models really able to Solve Simple Math Word Problems?, NAACL 2021",
            "mit",
        ),
        BuiltinSource(
            "aqua",
            "deepmind/aqua_rat",
            ("raw",),
            frozenset({"question", "options", "correct"}),
            AnswerType.choice,
            aqua,
            "Ling et al., Program Induction by Rationale Generation, ACL 2017",
            "apache-2.0",
        ),
        BuiltinSource(
            "math",
            "EleutherAI/hendrycks_math",
            _MATH_SUBJECTS,
            frozenset({"problem", "solution"}),
            AnswerType.expression,
            math,
            "Hendrycks et al., Measuring Mathematical Problem Solving With the MATH Dataset, NeurIPS 2021",
            "mit",
        ),
        BuiltinSource(
            "csqa",
            "tau/commonsense_qa",
            (None,),
            frozenset({"id", "question", "choices", "answerKey"}),
            AnswerType.choice,
            commonsense_qa,
            "Talmor et al., CommonsenseQA, NAACL 2019",
            "mit",
        ),
        BuiltinSource(
            "obqa",
            "allenai/openbookqa",
            ("main",),
            frozenset({"id", "question_stem", "choices", "answerKey"}),
            AnswerType.choice,
            openbookqa,
            "Mihaylov et al., Can a Suit of Armor Conduct Electricity?, EMNLP 2018",
            "apache-2.0",
        ),
        BuiltinSource(
            "strategyqa",
            "ChilleD/StrategyQA",
            (None,),
            frozenset({"qid", "question", "answer"}),
            AnswerType.boolean,
            strategyqa,
            "Geva et al., Did Aristotle Use a Laptop?, TACL 2021",
            "mit",
        ),
    )
}
