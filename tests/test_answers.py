"""How cotforge reads and compares answers, one family of real-world forms per block.

Each case is built on a real row of the paper's released data (tests/fixtures/eit-nlp-samples): its question,
choices and gold answer, with a teacher-style answer written around it in the form the family names. To add a case,
add a row to CASES: (family, text, answer type, choices, expected answer or None, expected source).
"""

from __future__ import annotations

import pytest

from cotforge.answers import (
    AnswerSource,
    AnswerType,
    UnusableGold,
    answers_match,
    extract_answer,
    normalise_gold,
    repair_control_chars,
)

N, C, B, E = AnswerType.number, AnswerType.choice, AnswerType.boolean, AnswerType.expression
S = AnswerSource
# CommonsenseQA row 1 (gold B), OpenBookQA row 1 (gold D), AQuA row 2 (gold B).
CSQA = ["race track", "populated areas", "the desert", "apartment", "roadblock"]
OBQA = [
    "puppies learning new tricks",
    "children growing up and getting old",
    "flowers wilting in a vase",
    "plants sprouting, blooming and wilting",
]
AQUA = ["3", "2.5", "2.25", "1.5", "4"]

CASES: list[tuple[str, str, AnswerType, list[str] | None, str | None, AnswerSource | None]] = [
    # 1. A negated answer line never yields the value it negates.
    ("negation", "72 is what I got first. The answer is not 11, it's 72.", N, None, "72", S.canonical),
    ("negation", "3 x 24 = 72, so the answer isn't 11 but 72.", N, None, "72", S.canonical),
    ("negation", "The members were musicians. The answer is not False.", B, None, "True", S.canonical),
    ("negation", "I computed 30 + 40 = 70. The answer is not 11.", N, None, None, None),  # no last-number guess
    ("negation", "The populated areas have people. The answer is not A, it's B.", C, CSQA, "B", S.canonical),
    ("negation", "Hence, the answer is not consistent with the given answer.", N, None, None, None),
    # 2. Choice letters in the forms teachers write them.
    ("letter", "Sammy wants people. The answer is 'B'", C, CSQA, "B", S.canonical),
    ("letter", "Plants sprout and bloom with sunlight. The answer is D>", C, OBQA, "D", S.canonical),
    ("letter", "The stream speed is 2.5 km/h. The answer is B.", C, AQUA, "B", S.canonical),
    ("letter", "Populated areas have people, so the answer is is B", C, CSQA, "B", S.canonical),
    ("letter", "Populated areas have people. The answer isB", C, CSQA, "B", S.canonical),
    ("letter", "M = 7.5, DS = 7.5 + x, US = 7.5 - x, so x = 2.5\nAnswer B", C, AQUA, "B", S.letter_form),
    ("letter", "x = 2.5 km/h.\nANSWER : B", C, AQUA, "B", S.marker),
    ("letter", "The sun makes plants grow, so we pick option D", C, OBQA, "D", S.letter_form),
    ("letter", "Sunlight drives plant life cycles (D) as stated.", C, OBQA, "D", S.letter_form),
    ("letter", "The answer is (b).", C, CSQA, "B", S.canonical),
    ("letter", "The answer is populated areas.", C, CSQA, "B", S.canonical),
    # ... and closing sentences with no answer line.
    ("closing", "People gather in towns. The only option that fits is B.", C, CSQA, "B", S.closing_sentence),
    ("closing", "People gather in towns. The best choice is populated areas.", C, CSQA, "B", S.closing_sentence),
    (
        "closing",
        "Police officers arrest people. So whether The Police can arrest is False",
        B,
        None,
        "False",
        S.closing_sentence,
    ),
    ("closing", "They were musicians, so the claim is not true.", B, None, "False", S.closing_sentence),
    ("closing", "There were $52$ prime dates total in 2007.", E, None, "52", S.closing_sentence),
    (
        "closing",
        "She uses $12$ quarts, so she needs $12 \\div 2 = 6$ quarts of green paint.",
        E,
        None,
        "6",
        S.closing_sentence,
    ),
    ("closing", "Ordering them gives $3! = 6$ possible orderings.", E, None, "6", S.closing_sentence),
    # 3. MATH answers: units, \text{}, Unicode, placeholders.
    ("math", "The area is 114 square units. The answer is 114 square units", E, None, "114", S.canonical),
    ("math", "The answer is $5\\text{ cm}$.", E, None, "5", S.canonical),
    ("math", "The fruit is \\text{orange}. The answer is \\text{orange}", E, None, "orange", S.canonical),
    ("math", "The answer is \\text{Tuesday}", E, None, "Tuesday", S.canonical),
    ("math", "The answer is 2√5", E, None, "2\\sqrt{5}", S.canonical),
    ("math", "The answer is ¼", E, None, "\\frac{1}{4}", S.canonical),
    ("math", "The answer is <answer>", E, None, None, None),
    ("math", "First 6. The answer is [your answer]", N, None, "6", S.fallback),
    ("math", "The answer is 6. Check: the answer is <answer>", N, None, "6", S.canonical),
    ("number", "Each costs 2½ dollars. The answer is 2½", N, None, "2.5", S.canonical),
    # 4. LaTeX damaged by careless JSON: \f = form feed, \t = tab, \b = backspace.
    ("json", "So $x = \x0crac{1}{2}$. The answer is \x0crac{1}{2}", E, None, "\\frac{1}{2}", S.canonical),
    ("json", "The total is $\x08oxed{441\text{ pounds}}$", E, None, "441", S.boxed),
    ("json", "Thus $3 \times 4 = \x08oxed{12}$", E, None, "12", S.boxed),
    # The answer-only baseline: the text is the answer.
    ("bare", "145", N, None, "145", S.bare),
    ("bare", "B", C, CSQA, "B", S.bare),
    ("bare", "Option C", C, AQUA, "C", S.bare),
    ("bare", "True", B, None, "True", S.bare),
    ("bare", "52\\%", E, None, "52", S.bare),
    ("bare", "I have no idea", N, None, None, None),
]


@pytest.mark.parametrize(("family", "text", "answer_type", "choices", "answer", "source"), CASES)
def test_reading_answers(
    family: str,
    text: str,
    answer_type: AnswerType,
    choices: list[str] | None,
    answer: str | None,
    source: AnswerSource | None,
) -> None:
    parsed = extract_answer(text, answer_type, choices)
    if answer is None:
        assert parsed is None, f"{family}: expected no answer, read {parsed}"
    else:
        assert parsed is not None, f"{family}: no answer read from {text!r}"
        assert (parsed.answer, parsed.source) == (answer, source), family


MATCHES = [
    # 5. Two choice answers that both fail to normalise are not equal.
    ("F", "G", C, CSQA, False),
    ("B", "B(16).", C, AQUA, True),
    ("D", "is D.", C, AQUA, True),
    ("C", "30. i.e C", C, AQUA, True),
    ("E", "OptionE -15", C, AQUA, True),
    ("yes", "True", B, None, True),
    ("maybe", "perhaps", B, None, False),
    # MATH gold as the release writes it.
    ("3.50", "\\$3.50", E, None, True),
    ("3.5", "\\$3.50", E, None, True),
    ("114 square units", "114\\text{ square units}", E, None, True),
    ("\\text{orange}", "\\text{orange}", E, None, True),
    ("\\text{Tuesday}", "tuesday", E, None, True),
    ("\\text{(A), (C)}", "A, C", E, None, True),
    ("\\frac14", "¼", E, None, True),
    ("2√5", "2\\sqrt{5}", E, None, True),
    ("\\frac{1}{3}", "\\frac{1}{2}", E, None, False),
    ("", "", E, None, False),
    ("\\frac{1}{2}", repair_control_chars("\x0crac{1}{2}"), E, None, True),
]


@pytest.mark.parametrize(("predicted", "gold", "answer_type", "choices", "expected"), MATCHES)
def test_comparing_answers(
    predicted: str, gold: str, answer_type: AnswerType, choices: list[str] | None, expected: bool
) -> None:
    assert answers_match(predicted, gold, answer_type, choices) is expected


@pytest.mark.parametrize(
    ("gold", "answer_type", "choices", "expected"),
    [
        ("B(16).", C, AQUA, "B"),
        ("is D.", C, AQUA, "D"),
        ("30. i.e C", C, AQUA, "C"),
        ("OptionE -15", C, AQUA, "E"),
        ("True", B, None, "True"),
        ("1,120", N, None, "1120"),
        ("\\$3.50", E, None, "\\$3.50"),
    ],
)
def test_dirty_gold_is_read_against_the_choices(
    gold: str, answer_type: AnswerType, choices: list[str] | None, expected: str
) -> None:
    assert normalise_gold(gold, answer_type, choices) == expected


@pytest.mark.parametrize(
    ("gold", "answer_type", "choices"),
    [
        ("hello", C, AQUA),  # names no choice
        ("F", C, AQUA),  # a label past the last choice
        ("maybe", B, None),
        ("lots", N, None),
        ("\\frac{1}", E, None),  # cut at the first '}' in the paper's release
        ("2\\sqrt{5", E, None),
        ("441\\text{ pounds", E, None),
    ],
)
def test_unusable_gold_is_flagged(gold: str, answer_type: AnswerType, choices: list[str] | None) -> None:
    with pytest.raises(UnusableGold):
        normalise_gold(gold, answer_type, choices)


def test_control_characters_repaired_only_where_unambiguous() -> None:
    assert repair_control_chars("\x0crac{1}{2} and \timesext") == "\\frac{1}{2} and \timesext"
    assert repair_control_chars("a\tb") == "a\tb"  # a real tab between words stays
    assert repair_control_chars("x \neq y") == "x \\neq y"
    assert repair_control_chars("line one\nequal parts") == "line one\nequal parts"
    assert repair_control_chars("\x08eta + \x07lpha") == "\\beta + \\alpha"
