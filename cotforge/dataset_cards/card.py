"""The README.md of a published corpus: YAML metadata the Hub reads, then what the corpus is and how to use it."""

from __future__ import annotations

from typing import Any

import yaml

from cotforge.corpus import HubLayout
from cotforge.dataset_cards.card_template import CARD_TEMPLATE
from cotforge.dataset_cards.stats import SubsetStats
from cotforge.quality import SIGNAL_CHARS, SIMILARITY_CHARS, THRESHOLD
from cotforge.quality.duplicates import NUM_PERM
from cotforge.quality.rsr import RANK_CLIP
from cotforge.quality.signals import DISTINCT_SAMPLE
from cotforge.recipes.formats import FORMATS
from cotforge.recipes.sources import BUILTIN_SOURCES
from cotforge.schemas.record import Coverage

PAPER_BIBTEX = """@inproceedings{chen2025unveiling,
  title     = {Unveiling the Key Factors for Distilling Chain-of-Thought Reasoning},
  author    = {Chen, Xinghao and Sun, Zhijing and Guo, Wenjin and Zhang, Miaoran and Chen, Yanjun and Sun, Yirong
               and Su, Hui and Pan, Yijie and Klakow, Dietrich and Li, Wenjie and Shen, Xiaoyu},
  booktitle = {Findings of the Association for Computational Linguistics: ACL 2025},
  year      = {2025},
  note      = {arXiv:2502.18001}
}"""


def size_category(rows: int) -> str:
    for limit, label in (
        (1_000, "n<1K"),
        (10_000, "1K<n<10K"),
        (100_000, "10K<n<100K"),
        (1_000_000, "100K<n<1M"),
        (10_000_000, "1M<n<10M"),
    ):
        if rows < limit:
            return label
    return "10M<n<100M"


def data_files(subset: str, splits: list[str]) -> list[dict[str, str]]:
    return [{"split": split, "path": HubLayout.shards(subset, split)} for split in splits]


def licence_of(datasets: list[str], license_id: str | None) -> dict[str, str]:
    """The card's licence fields: the one given, else the source data sets' licence when they share one, else
    'other' with a name and a link to the card's licence section (the Hub asks for both with 'other')."""
    known = {BUILTIN_SOURCES[d].license for d in datasets if d in BUILTIN_SOURCES}
    if license_id is None and len(known) == 1 and all(d in BUILTIN_SOURCES for d in datasets):
        license_id = known.pop()
    if license_id is None or license_id == "other":
        return {"license": "other", "license_name": "mixed-source-licenses", "license_link": HubLayout.licence}
    return {"license": license_id}


def licence_text(datasets: list[str]) -> str:
    lines = [f"- {BUILTIN_SOURCES[d].hub_id}: {BUILTIN_SOURCES[d].license}" for d in datasets if d in BUILTIN_SOURCES]
    lines += [f"- {d}: the licence of the user's data" for d in datasets if d not in BUILTIN_SOURCES]
    return (
        "The questions and gold answers keep the licences of their source data sets:\n"
        + "\n".join(lines)
        + "\n\nThe rationales were written by the teacher models named in each subset; their providers' terms"
        " of use apply to them.\n"
    )


def metadata(
    stats: list[SubsetStats],
    pretty_name: str,
    license_id: str | None,
    other_configs: list[dict[str, Any]],
    rejected_splits: list[str],
) -> dict[str, Any]:
    datasets = sorted({d for s in stats for d in s.datasets})
    configs: list[dict[str, Any]] = [
        {"config_name": s.subset, "data_files": data_files(s.subset, list(s.splits))} for s in stats
    ]
    if configs:  # `load_dataset(repo)` with no subset name loads this one
        configs[0] = {**configs[0], "default": True}
    if rejected_splits:
        configs.append(
            {"config_name": HubLayout.rejected, "data_files": data_files(HubLayout.rejected, rejected_splits)}
        )
    configs += [c for c in other_configs if c.get("config_name") not in {x["config_name"] for x in configs}]
    return {
        "pretty_name": pretty_name,
        **licence_of(datasets, license_id),
        "language": ["en"],
        "task_categories": ["text-generation", "question-answering"],
        "size_categories": [size_category(sum(s.rows for s in stats))],
        "source_datasets": [BUILTIN_SOURCES[d].hub_id for d in datasets if d in BUILTIN_SOURCES] or ["original"],
        "annotations_creators": ["machine-generated"],
        "tags": ["synthetic", "chain-of-thought", "distillation", "reasoning", "cotforge"],
        "configs": configs,
    }


def _stats_table(stats: list[SubsetStats]) -> str:
    rows = [
        "| subset | data sets | rows | accuracy vs gold | median words | median steps | tokens | cost |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for s in stats:
        cost = "n/a" if s.cost_usd is None else f"${s.cost_usd:.2f}"
        tokens = s.prompt_tokens + s.completion_tokens
        rows.append(
            f"| `{s.subset}` | {', '.join(s.datasets)} | {s.rows:,} | {s.accuracy:.1%} | "
            f"{s.median_words:g} | {s.median_steps:g} | {tokens:,} | {cost} |"
        )
    return "\n".join(rows)


def _rate(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def signals_table(stats: list[SubsetStats]) -> str:
    """One row per subset (a teacher x level x format) of its quality signals; empty when none has them."""
    measured = [s for s in stats if s.signals is not None]
    if not measured:
        return ""
    rows = [
        "| subset | questions (n > 1) | pass rate | majority agreement | pairwise similarity | distinct-1/2/3/4 "
        "| near-duplicates | words p10/p50/p90 | steps p50 | truncated |",
        "|---|---:|---:|---:|---:|---|---:|---|---:|---:|",
    ]
    for s in measured:
        q = s.signals
        assert q is not None
        words = "/".join(f"{q.words.get(p, 0):g}" for p in ("p10", "p50", "p90"))
        rows.append(
            f"| `{s.subset}` | {q.questions:,} ({q.multi_answer_questions:,}) | {_rate(q.mean_pass_rate)} | "
            f"{_rate(q.mean_majority_agreement)} | {_rate(q.mean_pairwise_similarity)} | "
            f"{'/'.join(f'{d:.2f}' for d in q.distinct_n)} | {q.near_duplicates:,} ({q.near_duplicate_rate:.1%}) | "
            f"{words} | {q.steps.get('p50', 0):g} | {q.truncation_rate:.1%} |"
        )
    return (
        "\n".join(rows)
        + _cut_texts(measured)
        + f"""

Quality signals, per subset. Per question with more than one answer: the teacher's pass rate (correct answers /
answers, rejections counted) and majority agreement (share of its records that give the most common answer), each
averaged over those questions; pairwise similarity: mean normalized Indel similarity of the answers to the same
question (1 = identical). distinct-n: distinct n-grams / n-grams of the word tokens of at most {DISTINCT_SAMPLE:,}
rationales (those with the smallest key hashes). Near-duplicates: rationales whose estimated Jaccard similarity of
word 3-grams with an earlier question's rationale is at least {THRESHOLD} (MinHash LSH, {NUM_PERM} permutations).
Truncated: answers rejected as cut by the token budget / answers returned. Distinct-n and near-duplicates read
the first {SIGNAL_CHARS:,} characters of a rationale, pairwise similarity the first {SIMILARITY_CHARS:,} of each
answer. `cotforge export` and `cotforge train` filter on them (`--min-pass-rate`, `--max-pass-rate`, `--dedup`).
"""
    )


def _cut_texts(measured: list[SubsetStats]) -> str:
    """A line per subset with texts longer than the signals read (counted in cotforge_stats.json)."""
    notes = [(s.subset, s.signals.cut_note()) for s in measured if s.signals is not None]
    lines = [f"- `{name}`: {note}" for name, note in notes if note]
    return "\n\nLonger texts than the signals read:\n\n" + "\n".join(lines) if lines else ""


def _figure(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def suitability_table(stats: list[SubsetStats]) -> str:
    """One row per subset and student it was scored under (`cotforge score`); empty when none was."""
    rows = [
        "| subset | student (weights) | records | tokens | RSR | mean surprisal | mean rank |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for s in stats:
        for fit in s.suitability:
            by = fit.scored_by
            rows.append(
                f"| `{s.subset}` | {by.student} (`{by.weights_digest}`) | {fit.records:,} | {fit.tokens:,} | "
                f"{_figure(fit.rsr)} | {_figure(fit.mean_surprisal)} | {_figure(fit.mean_rank)} |"
            )
    if len(rows) == 2:
        return ""
    return (
        "\n".join(rows)
        + f"""

How well each subset suits a student before training it (`cotforge score`): every completion token's surprisal
(-log p, nats) and rank among the student's next-token logits (clipped at {RANK_CLIP}), under the student's own chat
template. RSR, the Rank-Surprisal Ratio of arXiv 2601.14249: the mean of the records' mean ranks over the mean of
their mean surprisals; lower suits the student better. Mean surprisal and mean rank alone are its baselines.
"""
    )


def judge_table(stats: list[SubsetStats]) -> str:
    """One row per judged subset: each rubric's mean score (records judged, verdicts rejected); empty when none."""
    judged = [s for s in stats if s.judge]
    if not judged:
        return ""
    rubrics = sorted({name for s in judged for name in s.judge or {}})
    rows = [f"| subset | {' | '.join(rubrics)} |", "|---|" + "---:|" * len(rubrics)]
    for s in judged:
        found = s.judge or {}
        cells = [
            f"{_rate(found[r].mean)} ({found[r].judged:,}, {found[r].rejected:,})" if r in found else "-"
            for r in rubrics
        ]
        rows.append(f"| `{s.subset}` | {' | '.join(cells)} |")
    return (
        "\n".join(rows)
        + """

LLM judge (`cotforge judge`): each rubric's mean score per subset (records with a valid verdict, verdicts rejected
as malformed). `cotforge export` and `cotforge train` filter on the scores (`--min-judge faithful:4`).
"""
    )


def _samples(stats: list[SubsetStats]) -> str:
    parts = []
    for s in stats:
        parts.append(
            f"<details><summary><code>{s.subset}</code></summary>\n\n**Question:** {s.sample_question}\n\n"
            f"```text\n{s.sample_rationale}\n```\n</details>"
        )
    return "\n\n".join(parts)


def _arms_note(stats: list[SubsetStats]) -> str:
    """A sentence on the reasoning teachers' arms, where the corpus has them."""
    modes = {s.format_mode for s in stats}
    parts = []
    if "native" in modes:
        parts.append(
            "`<teacher>-native-cot` subsets hold a reasoning teacher's own trace as the CoT (the `reasoning` column; "
            "the rationale is the answer line), and their word counts are the trace's"
        )
    if "condensed" in modes:
        parts.append(
            "`<teacher>-condensed-g<level>-cot` subsets hold those traces rewritten by the teacher at a level (the "
            "paper's levels made from a long trace)"
        )
    return "\n" + "; ".join(parts) + "." if parts else ""


def _format_names() -> str:
    names = [spec.card for spec in FORMATS.values()]
    return ", ".join(names[:-1]) + " and " + names[-1]


def _coverage_line(coverage: Coverage | None) -> str:
    """Top-up sampling's reach, where the build used it."""
    if coverage is None:
        return ""
    attempts = ", ".join(f"{count} after {tries}" for tries, count in coverage.attempts.items())
    return (
        f"\n- top-up sampling: each prompt (problem x teacher x level x format) asked until "
        f"{coverage.until_correct} correct, at most {coverage.max_attempts} times: of {coverage.prompts:,} prompts, "
        f"{coverage.covered:,} reached {coverage.until_correct} correct, {coverage.some_correct:,} at least one, "
        f"{coverage.none_correct:,} none; attempts per prompt: {attempts}"
    )


def _recipe_summary(recipe: dict[str, Any] | None) -> str:
    if not recipe:
        return "No recipe was recorded with this corpus."
    teachers = [t if isinstance(t, str) else t.get("model", "?") for t in recipe.get("teachers", [])]
    sources = [
        s if isinstance(s, str) else s.get("dataset") or s.get("hub_id") or s.get("path")
        for s in recipe.get("sources", [])
    ]
    from cotforge.schemas.recipe import SamplingParams

    sampling = SamplingParams().model_dump() | recipe.get("sampling", {})
    lines = [
        f"- recipe: `{recipe.get('name', 'cot-build')}` (full text in `{HubLayout.recipe}`)",
        f"- sources: {', '.join(map(str, sources))}",
        f"- teachers: {', '.join(map(str, teachers))}",
        f"- granularity levels: {recipe.get('granularities', [5])}; formats: {recipe.get('formats', ['cot'])} "
        f"({recipe.get('format_mode', 'direct')})"
        + ("; the native arm" if recipe.get("native") else "")
        + (f"; condensed levels {recipe['condensed']}" if recipe.get("condensed") else ""),
        f"- prompts: {recipe.get('custom_prompt') or recipe.get('prompt_mode', 'blind')}"
        + (f", the recipe's own level guides `{recipe['guides'].get('name')}`" if recipe.get("guides") else "")
        + f"; answers kept: {recipe.get('keep', 'all')}",
        f"- sampling: {', '.join(f'{k}={v}' for k, v in sampling.items())}",
    ]
    return "\n".join(lines)


def render_card(
    repo_id: str,
    stats: list[SubsetStats],
    *,
    recipe: dict[str, Any] | None = None,
    license_id: str | None = None,
    pretty_name: str | None = None,
    has_plot: bool = False,
    other_configs: list[dict[str, Any]] | None = None,
    rejected_splits: list[str] | None = None,
    contamination: str | None = None,
    incomplete: str | None = None,
    coverage: Coverage | None = None,
) -> str:
    """README.md text; the same inputs always give the same text. `incomplete`: why the corpus is not whole."""
    stats = sorted(stats, key=lambda s: s.subset)
    pretty_name = pretty_name or repo_id.rsplit("/", 1)[-1]
    header = yaml.safe_dump(
        metadata(stats, pretty_name, license_id, other_configs or [], rejected_splits or []),
        sort_keys=False,
        allow_unicode=True,
    )
    first = stats[0].subset if stats else "SUBSET"
    datasets = sorted({d for s in stats for d in s.datasets})
    citations = "\n".join(
        f"- {BUILTIN_SOURCES[d].hub_id}: {BUILTIN_SOURCES[d].citation}" for d in datasets if d in BUILTIN_SOURCES
    )
    plot = f"\n![Mean rationale length by granularity level]({HubLayout.plot})\n" if has_plot else ""
    rejected = (
        f"\nAnswers that did not become records are in the `{HubLayout.rejected}` subset, each with its "
        "reason (unparseable, truncated, refusal, wrong answer when filtering, API failure).\n"
        if rejected_splits
        else ""
    )
    notice = f"\n> **Incomplete build:** {incomplete}; some questions may lack some subsets.\n" if incomplete else ""
    return CARD_TEMPLATE.format(
        header=header,
        pretty_name=pretty_name,
        formats=_format_names(),
        arms_note=_arms_note(stats),
        notice=notice,
        rejected=rejected,
        subsets_table=_stats_table(stats),
        plot=plot,
        signals=signals_table(stats),
        suitability=suitability_table(stats),
        judge=judge_table(stats),
        repo_id=repo_id,
        first=first,
        samples=_samples(stats),
        recipe=_recipe_summary(recipe),
        coverage=_coverage_line(coverage),
        contamination=contamination or "Not checked: run `cotforge check` on the build before pushing.",
        licence=licence_text(datasets),
        bibtex=PAPER_BIBTEX,
        citations=citations or "- user data",
    )
