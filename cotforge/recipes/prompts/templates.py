"""The text of every prompt: level guides, 1-shot demonstrations per level, format guides and examples.

Following arXiv 2502.18001, each granularity level is steered by a guide and a 1-shot demonstration written at that
level. The math demonstration is the paper's Figure 1 question (GSM8K "Youngsville"); the level 2 and level 3 texts
follow the figure's "simple" and "detailed" rationales. Any edit here changes the prompt version of the prompts
that use it, so records made before and after an edit never mix silently.
"""

from __future__ import annotations

from dataclasses import dataclass

ANSWER_LINE = "The answer is {answer}"

SYSTEM = (
    "You are a careful teacher writing worked solutions that a small student model will learn from. "
    "Write the solution at exactly the level of detail described and shown, in the format asked for. "
    "End with one final line of the form 'The answer is X', where X is {answer_form}, and write nothing after it."
)

ANSWER_FORMS = {
    "math": "the final number alone, without units",
    "expression": "the final answer alone, in LaTeX if needed, without $ signs",
    "choice": "the letter of the correct choice",
    "boolean": "True or False",
}

# The native arm: a reasoning model thinks as it is used to, and its trace is the CoT; the reply is the answer line.
NATIVE_GUIDE = "Think the problem through as you usually do, then reply with the final answer line only."
LEVEL_GUIDES = {
    0: "Give no reasoning at all: reply with the final answer line only.",
    1: "Level 1 of 6 (the tersest): one short sentence naming the key operation or fact, without working.",
    2: "Level 2 of 6: a few short steps, each a bare calculation or fact, with no explanation.",
    3: "Level 3 of 6: short prose that states the given facts, then the calculation or inference, step by step.",
    4: "Level 4 of 6: every step written out, and every quantity or fact labelled with what it stands for.",
    5: "Level 5 of 6: numbered steps that also say why each operation or inference is the right one.",
    6: (
        "Level 6 of 6 (the most detailed): numbered steps that explain each concept and why it applies, "
        "then a final step that checks the result another way."
    ),
}

REWRITE_SYSTEM = (
    "You rewrite worked solutions into another format without changing their reasoning, their level of detail or "
    "their final answer. {format_guide} Keep every step of the original. End with the original's final line "
    "'The answer is X' and write nothing after it."
)

# Condensed levels: a native trace rewritten at a level (as SkyThought rewrote long traces into short ones).
CONDENSE_SYSTEM = (
    "You condense a long reasoning trace into a worked solution that a small student model will learn from. Keep "
    "the trace's reasoning and its final answer; leave out its detours, doubts and repetitions. Write the solution "
    "at exactly the level of detail described and shown. End with one final line of the form 'The answer is X', "
    "where X is {answer_form}, and write nothing after it."
)

GOLD_HINT = (
    "The correct final answer is {answer}. Write the reasoning that leads to it as if solving the problem "
    "yourself; do not mention that you were given the answer."
)


@dataclass(frozen=True)
class Demonstration:
    question: str
    answer: str
    by_level: dict[int, str]  # level -> rationale body, without the answer line


MATH_DEMO = Demonstration(
    question=(
        "Youngsville had a population of 684 people. The town had a growth spurt and the population increased by "
        "25% then they witnessed that 40% of the population moved away. What is the current population?"
    ),
    answer="513",
    by_level={
        1: "Increase 684 by 25%, then remove 40% of the result.",
        2: "Starting population: 684. Increase by 25%: 684 * 1.25 = 855. Decrease by 40%: 855 * 0.60 = 513.",
        3: (
            "Initial population: 684 people. Population increased by 25%: 684 * 0.25 = 171 people. New population: "
            "684 + 171 = 855 people. 40% of population moved away: 855 * 0.4 = 342 people. Remaining population: "
            "855 - 342 = 513 people."
        ),
        4: (
            "The town starts with 684 (initial population) people. The growth is 25% of 684: 684 (initial "
            "population) * 0.25 (growth rate) = 171 (new people). After the growth the town has 684 + 171 = 855 "
            "(population after growth) people. Then 40% of 855 move away: 855 (population after growth) * 0.40 "
            "(share leaving) = 342 (people who left). The current population is 855 - 342 = 513 (current "
            "population) people."
        ),
        5: (
            "1. The town starts with 684 people.\n"
            "2. An increase by 25% means adding a quarter of the current amount, so we find 25% of 684: "
            "684 * 0.25 = 171.\n"
            "3. We add the increase to the starting population because growth adds people: 684 + 171 = 855.\n"
            "4. 40% of the population moving away means removing 40% of the new total, not of the original, "
            "so we find 40% of 855: 855 * 0.40 = 342.\n"
            "5. We subtract the people who left from the population after growth: 855 - 342 = 513."
        ),
        6: (
            "1. A percentage is a number of hundredths: 25% = 0.25 and 40% = 0.40.\n"
            "2. The town starts with 684 people.\n"
            "3. An increase by 25% adds a quarter of the current population, so we compute 25% of 684: "
            "684 * 0.25 = 171.\n"
            "4. Growth adds people, so the new population is 684 + 171 = 855.\n"
            "5. The 40% who moved away are 40% of the population at that time, 855, not of the original 684: "
            "855 * 0.40 = 342.\n"
            "6. Moving away removes people, so the population is now 855 - 342 = 513.\n"
            "7. Check another way: keeping 60% after a 25% rise is multiplying by 1.25 and then by 0.60, which is "
            "multiplying by 0.75; 684 * 0.75 = 513, which agrees."
        ),
    },
)

# A native trace of MATH_DEMO's question, in the style of a reasoning model's thinking: the input of the condensed
# levels' demonstration (its output is MATH_DEMO's rationale at the level asked).
MATH_DEMO_TRACE = (
    "Okay, so the town starts with 684 people. First the population grows by 25%. Let me compute 25% of 684: a "
    "quarter of 684 is 171. So after the growth there are 684 + 171 = 855 people. Wait, the 40% who moved away, is "
    "that 40% of the original 684 or of the new 855? It says 40% of the population moved away after the growth, so "
    "it should be 40% of 855. 855 * 0.4 = 342. So 855 - 342 = 513. Let me double-check: 1.25 * 0.6 = 0.75, and "
    "684 * 0.75 = 513. Yes, that matches. The current population is 513."
)

CHOICE_DEMO = Demonstration(
    question=(
        "Q: Where would you put a clean plate after washing and drying it? Answer choices: A: table, B: cupboard, "
        "C: restaurant, D: dishwasher, E: flea market"
    ),
    answer="B",
    by_level={
        1: "Clean dishes are stored in a cupboard.",
        2: "The plate is clean and dry. Clean dishes are stored. Dishes are stored in a cupboard.",
        3: (
            "The plate has already been washed and dried, so it needs to be put away. A dishwasher is for washing "
            "and a table is for eating, while clean dishes are kept in a cupboard."
        ),
        4: (
            "The plate (a clean, dry dish) needs a storage place. A table (where food is eaten) and a dishwasher "
            "(where dishes are washed) are not storage. A restaurant and a flea market (places outside the home) "
            "do not fit. A cupboard (the usual storage for clean dishes) fits."
        ),
        5: (
            "1. The plate is already washed and dried, so the question asks where it is stored, not cleaned.\n"
            "2. A dishwasher is for washing, so it is wrong for a plate that is already clean.\n"
            "3. A table is where plates are used during meals, not where they are kept afterwards.\n"
            "4. A restaurant and a flea market are places outside the home, so they do not fit.\n"
            "5. A cupboard is where households keep clean dishes, so it is the right choice."
        ),
        6: (
            "1. The key fact is that the plate is clean and dry: the task left is to store it.\n"
            "2. Storage for dishes in a home is usually a cupboard, which keeps them clean and out of the way.\n"
            "3. A dishwasher is for washing; putting a clean plate back in it would mix it with dirty ones.\n"
            "4. A table is where plates are used during meals, not where they are stored.\n"
            "5. A restaurant and a flea market are places outside the home, so they are not where you put your "
            "own plate.\n"
            "6. Check: of all five choices only a cupboard is a storage place for clean dishes at home."
        ),
    },
)

BOOLEAN_DEMO = Demonstration(
    question="Would a sloth finish a 100-meter race before a cheetah?",
    answer="False",
    by_level={
        1: "Cheetahs are far faster than sloths.",
        2: "Sloths move at about 0.25 km/h. Cheetahs run at up to about 100 km/h.",
        3: (
            "Sloths are among the slowest mammals, moving at about 0.25 km/h. Cheetahs are the fastest land "
            "animals, running at up to about 100 km/h. So the cheetah would finish long before the sloth."
        ),
        4: (
            "The sloth's speed (about 0.25 km/h) would take it about 24 minutes (100 m at 0.25 km/h) to cover "
            "100 meters. The cheetah's speed (up to about 100 km/h) covers 100 meters in a few seconds. The "
            "cheetah finishes first."
        ),
        5: (
            "1. To know who finishes first we compare the speeds, since the faster runner covers 100 m sooner.\n"
            "2. A sloth moves at about 0.25 km/h, so 100 m takes it about 24 minutes.\n"
            "3. A cheetah runs at up to about 100 km/h, so 100 m takes it a few seconds.\n"
            "4. A few seconds is far less than 24 minutes, so the cheetah finishes first."
        ),
        6: (
            "1. The question asks whether the slower animal could win, so we compare the time each needs for "
            "100 m.\n"
            "2. Time is distance divided by speed.\n"
            "3. A sloth moves at about 0.25 km/h = 250 m per hour, so 100 m takes 100 / 250 = 0.4 hours, about "
            "24 minutes.\n"
            "4. A cheetah runs at up to about 100 km/h, about 28 m per second, so 100 m takes about 4 seconds.\n"
            "5. 4 seconds is far less than 24 minutes, so the cheetah finishes first.\n"
            "6. Check: even at a tenth of its top speed the cheetah would need under a minute, still far ahead."
        ),
    },
)
