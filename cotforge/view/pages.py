"""The pages of a build directory: overview, one question side by side, browse (records or rejections)."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Mapping
from typing import Any

from cotforge.corpus import BuildDir, BuildDirError
from cotforge.quality.rsr import SubsetSuitability
from cotforge.schemas.record import RejectionReason
from cotforge.view.html import (
    json_block,
    layout,
    level_label,
    line_plot,
    link,
    mark,
    number,
    select,
    table,
    text,
)
from cotforge.view.judged import JudgeCondition, Verdict, Verdicts
from cotforge.view.reader import PAGE_SIZE, Filters, Reader, SubsetInfo

NAV = (("/", "Overview"), ("/question", "Question"), ("/browse", "Browse"), ("/browse?kind=rejections", "Rejections"))
LIVE_SECONDS = 5
# A little script, only for convenience: a changed filter submits its form (a button does the same without it).
AUTO_SUBMIT = (
    "<script>document.querySelectorAll('form.filters select').forEach("
    "s=>s.addEventListener('change',()=>s.form.submit()))</script>"
)


def overview(reader: Reader, live: bool) -> str:
    build = reader.build
    try:
        report = build.read_report()
    except BuildDirError as error:
        report = None
        problem = f"<p class=bad>{text(error)}</p>"
    else:
        problem = ""
    catalogue = reader.catalogue()
    totals = reader.totals()
    rejected = sum(totals.rejected.values())
    failed = sum(totals.failed.values())
    body = [problem, f"<p>{text(build.path.resolve())}</p>"]
    refresh = link("/", "stop refreshing") if live else link("/", f"refresh every {LIVE_SECONDS} s", {"live": 1})
    body.append(f"<p class=meta>Read from the {reader.source} at each request: {refresh}.</p>")
    rows = [
        [text("accepted"), number(totals.accepted)],
        [text("rejected"), number(rejected)],
        *[[text(f"  rejected: {reason}"), number(count)] for reason, count in totals.rejected.items()],
        [text("failed (asked again on the next run)"), number(failed)],
        *[[text(f"  failed: {detail[:120]}"), number(count)] for detail, count in list(totals.failed.items())[:5]],
    ]
    stored = totals.accepted + rejected + failed
    if report is not None:
        rows.insert(0, [text("requested (build report)"), number(report.requested)])
        pending = max(0, report.requested - stored)
        rows.append([text("pending (requested, not stored yet)"), number(pending)])
    records = list(totals.subsets.values())
    prompt = sum(f.prompt_tokens for f in records) + totals.rejected_figures.prompt_tokens
    completion = sum(f.completion_tokens for f in records) + totals.rejected_figures.completion_tokens
    priced = sum(f.priced for f in records) + totals.rejected_figures.priced
    cost = sum(f.cost_usd for f in records) + totals.rejected_figures.cost_usd
    rows += [
        [text("prompt tokens"), number(prompt)],
        [text("completion tokens"), number(completion)],
        [text("cost (USD)"), number(cost if priced else None, ",.4f")],
    ]
    if report is not None:
        rows += [
            [text("wall time over every run (s)"), number(report.wall_time_s, ",.1f")],
            [text("runs"), number(report.runs)],
        ]
    body.append("<h2>Build</h2>" + table(["", "answers"], rows, caption=f"{stored:,} answers stored"))
    body.append("<h2>Subsets</h2>" + _subsets_table(catalogue, totals.subsets))
    body.append(_plots(catalogue, totals.subsets))
    body.append(_judge_means(reader.verdicts()))
    body.append(_suitability(build))
    stats = _stats_file(build)
    if stats:
        body.append(f"<h2>Statistics ({text(build.stats_path.name)})</h2>{stats}")
    head = f'<meta http-equiv="refresh" content="{LIVE_SECONDS}">' if live else ""
    return layout("Overview", "".join(body), NAV, "/", head)


def _subsets_table(catalogue: list[SubsetInfo], figures: Mapping[str, Any]) -> str:
    rows = []
    for info in catalogue:
        f = figures.get(info.name)
        n = f.records if f else 0
        rows.append(
            [
                link("/browse", info.name, {"subset": info.name}),
                text(info.dataset),
                text(info.teacher),
                text("-" if info.granularity is None else info.granularity),
                text(info.format),
                number(n),
                number(f.correct / n if n else None, ".1%"),
                number(f.rationale_chars / n if n else None, ",.0f"),
                number(f.steps / n if n else None, ".1f"),
                number(f.completion_tokens / n if n else None, ",.0f"),
                number(f.cost_usd if f and f.priced else None, ",.4f"),
                link("/browse", f"{info.rejections:,}", {"kind": "rejections", "subset": info.name})
                if info.rejections
                else number(0),
            ]
        )
    headers = ["subset", "data set", "teacher", "level", "format", "records", "accuracy", "mean chars", "mean steps"]
    return table([*headers, "mean completion tokens", "cost (USD)", "rejected or failed"], rows)


def _plots(catalogue: list[SubsetInfo], figures: Mapping[str, Any]) -> str:
    """Accuracy and length by level, one line per teacher and format (and data set, when there are several)."""
    several = len({s.dataset for s in catalogue}) > 1
    accuracy: dict[str, list[tuple[float, float]]] = defaultdict(list)
    length: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for info in catalogue:
        f = figures.get(info.name)
        if info.granularity is None or not f or not f.records:
            continue
        label = f"{info.teacher} {info.format}" + (f" ({info.dataset})" if several else "")
        accuracy[label].append((info.granularity, f.correct / f.records))
        length[label].append((info.granularity, f.rationale_chars / f.records))
    if not accuracy:
        return ""
    return (
        "<h2>By level</h2>"
        + line_plot("Accuracy by level", accuracy, "granularity level", "accuracy", percent=True)
        + line_plot("Rationale length by level", length, "granularity level", "mean characters")
    )


def _judge_means(verdicts: Verdicts) -> str:
    """Each subset's mean score per rubric, as the judge's store or scores file holds them now; a link lists the
    subset's records at or below the mean."""
    rows = [
        [
            link("/browse", subset, {"subset": subset}),
            text(rubric),
            number(len(scores)),
            number(mean := sum(scores) / len(scores), ".2f"),
            link("/browse", f"{rubric} <= {int(mean)}", {"subset": subset, "judge": f"{rubric} <= {int(mean)}"}),
        ]
        for (subset, rubric), scores in sorted(verdicts.scores.items())
    ]
    if not rows:
        return ""
    return "<h2>Judge</h2>" + table(["subset", "rubric", "records scored", "mean score", "weaker records"], rows)


def _suitability(build: BuildDir) -> str:
    """Each subset's scores under each student it was scored under (`cotforge score`), from the statistics file;
    an entry that cannot be read is left out (the file itself is shown below)."""
    try:
        saved = build.read_stats() or {}
    except BuildDirError:
        return ""
    rows = []
    for name, value in sorted(saved.items()):
        entries = value.get("suitability") if isinstance(value, dict) else None
        for entry in entries if isinstance(entries, list) else []:
            try:
                fit = SubsetSuitability.model_validate(entry)
            except ValueError:
                continue
            by = fit.scored_by
            figures = (number(v, ".3f") for v in (fit.rsr, fit.mean_surprisal, fit.mean_rank))
            rows.append([text(name), text(by.student), text(by.weights_digest), number(fit.records), *figures])
    if not rows:
        return ""
    headers = ["subset", "student", "weights", "records", "RSR", "mean surprisal", "mean rank"]
    return "<h2>Suitability (cotforge score; lower RSR suits the student better)</h2>" + table(headers, rows)


def _stats_file(build: BuildDir) -> str:
    path = build.stats_path
    if not path.is_file():
        return ""
    try:
        return json_block(json.loads(path.read_text(encoding="utf-8")))
    except (ValueError, UnicodeDecodeError) as error:
        return f"<p class=bad>{text(path.name)}: not readable JSON ({text(error)})</p>"


# ---- one question, side by side -----------------------------------------------------------------------------------


def question(reader: Reader, problem_id: str, search: str) -> str:
    body = [
        '<form method="get" action="/question" role="search"><label for="q">Find a question by id or text </label>'
        f'<input id="q" name="q" type="search" value="{text(search)}" size="40"> <button>Find</button></form>'
    ]
    if search and not problem_id:
        found = [(search, "")] if reader.question(search) else reader.find_questions(search)
        if len(found) == 1:
            problem_id = found[0][0]
        elif found:
            items = "".join(f"<li>{link('/question', pid, {'id': pid})}: {text(q)}</li>" for pid, q in found)
            body.append(f"<h2>Questions holding “{text(search)}”</h2><ul>{items}</ul>")
            return layout("Question", "".join(body), NAV, "/question")
        else:
            body.append(f"<p>No question has the id or holds the text “{text(search)}”.</p>")
            return layout("Question", "".join(body), NAV, "/question")
    problem_id = problem_id or reader.first_question() or ""
    rows = reader.question(problem_id) if problem_id else []
    if not rows:
        body.append(
            f"<p>No answer to a question {text(problem_id)!s} is stored.</p>"
            if problem_id
            else "<p>No answers yet.</p>"
        )
        return layout("Question", "".join(body), NAV, "/question")
    before, after = reader.neighbours(problem_id)
    steps = [link("/question", "← previous question", {"id": before}) if before else "",
             link("/question", "next question →", {"id": after}) if after else ""]  # fmt: skip
    body.append(f'<nav class="pages" aria-label="questions">{" ".join(s for s in steps if s)}</nav>')
    first = next((r for r in rows if r["kind"] == "record"), rows[0])
    facts = [
        [text("id"), text(problem_id)],
        [text("data set"), text(first.get("dataset"))],
        [text("question"), f"<pre>{text(first.get('question'))}</pre>"],
    ]
    if first.get("gold_answer") is not None:
        facts.append([text("gold answer"), text(first.get("gold_answer"))])
    right = sum(1 for r in rows if r["kind"] == "record" and r["correct"])
    accepted = sum(1 for r in rows if r["kind"] == "record")
    facts.append([text("answers"), text(f"{len(rows)} ({accepted} accepted, {right} correct)")])
    body.append(table(["", "value"], facts, caption="The problem"))
    body.append(_side_by_side(rows, reader.verdicts()))
    return layout(f"Question {problem_id}", "".join(body), NAV, "/question")


def _side_by_side(rows: list[dict[str, Any]], verdicts: Verdicts) -> str:
    """Columns by level; a row per teacher, format and sample."""
    levels = sorted({r.get("granularity") for r in rows}, key=lambda g: (g is None, g or 0))
    grid: dict[tuple[str, str, int], dict[int | None, list[dict[str, Any]]]] = defaultdict(lambda: defaultdict(list))
    for row in rows:
        grid[(row.get("teacher") or "", row.get("format") or "", row.get("sample_index") or 0)][
            row.get("granularity")
        ].append(row)
    lines = []
    for (teacher, fmt, sample), by_level in sorted(grid.items()):
        cells = [text(f"{teacher} · {fmt} · sample {sample}")]
        cells += ["".join(_answer(r, verdicts) for r in by_level.get(level, [])) or "-" for level in levels]
        lines.append(cells)
    return table(
        ["teacher · format · sample", *(level_label(level) for level in levels)], lines, caption="Every answer"
    )


def _answer(row: dict[str, Any], verdicts: Verdicts) -> str:
    usage = row.get("usage") or {}
    cost = row.get("cost_usd")
    meta = f"{usage.get('prompt_tokens', 0):,} + {usage.get('completion_tokens', 0):,} tokens"
    meta += f", ${cost:.5f}" if cost is not None else ""
    parts = [f'<div class="answer">{mark(row)} <span class="meta">{text(row.get("subset"))}</span>']
    if row["kind"] == "record":
        parts.append(
            f"<div>answer <b>{text(row.get('predicted_answer'))}</b> "
            f"<span class=meta>read from: {text(row.get('answer_source') or 'unknown')}</span></div>"
        )
        if row.get("reasoning"):
            parts.append(f"<details><summary>reasoning trace</summary><pre>{text(row['reasoning'])}</pre></details>")
        parts.append(f"<pre>{text(row.get('rationale'))}</pre>")
        judged = verdicts.by_key.get(row.get("key") or "", {})
        parts += [
            f'<div class="judge">judge, {text(rubric)}: {_verdict_cell(v)}</div>'
            for rubric, v in sorted(judged.items())
        ]
    else:
        parts.append(_rejection_detail(row))
    parts.append(f'<div class="meta">{text(meta)}</div></div>')
    return "".join(parts)


def _rejection_detail(row: dict[str, Any]) -> str:
    detail = f"<div>reason: <b>{text(row.get('reason'))}</b> {text(row.get('detail'))}</div>"
    raw = row.get("raw_response")
    detail += f"<div>raw response:</div><pre>{text(raw)}</pre>" if raw else "<div class=meta>no raw response</div>"
    if row.get("raw_reasoning"):
        detail += f"<details><summary>raw reasoning</summary><pre>{text(row['raw_reasoning'])}</pre></details>"
    return detail


# ---- browse -------------------------------------------------------------------------------------------------------


def browse(reader: Reader, filters: Filters) -> str:
    catalogue = reader.catalogue()
    rejections = filters.kind == "rejections"
    levels = sorted({s.granularity for s in catalogue}, key=lambda g: (g is None, g or 0))
    fields = [
        select("kind", "show", [("records", "records"), ("rejections", "rejections")], filters.kind),
        select("subset", "subset", [(s.name, s.name) for s in catalogue], filters.subset),
        select("dataset", "data set", [(d, d) for d in sorted({s.dataset for s in catalogue})], filters.dataset),
        select("level", "level", [("none" if g is None else str(g), level_label(g)) for g in levels], filters.level),
        select("format", "format", [(f, f) for f in sorted({s.format for s in catalogue})], filters.format),
        select("teacher", "teacher", [(t, t) for t in sorted({s.teacher for s in catalogue})], filters.teacher),
        select("correct", "correct", [("yes", "correct"), ("no", "incorrect")], filters.correct),
        select("reason", "rejection reason", [(r.value, r.value) for r in RejectionReason], filters.reason),
        f'<label for="f-text">text or id<input id="f-text" name="text" type="search" '
        f'value="{text(filters.text)}"></label>',
    ]
    verdicts = reader.verdicts()
    problem = ""
    if verdicts.rubrics:
        fields.append(
            f'<label for="f-judge">judge score<input id="f-judge" name="judge" type="search" '
            f'value="{text(filters.judge)}" placeholder="{text(verdicts.rubrics[0])} &lt;= 2"></label>'
        )
        problem = _judge_filter_problem(filters.judge)
    form = f'<form class="filters" method="get" action="/browse">{"".join(fields)}<button>Filter</button></form>'
    filters, page = reader.clamped_page(filters)
    body = [form, AUTO_SUBMIT, problem]
    start = filters.page * PAGE_SIZE
    shown = f"{start + 1:,}-{start + len(page.rows):,}" if page.rows else "none"
    of = f" of {page.total:,}" if page.total is not None else ""
    body.append(f"<p>{'Rejections' if rejections else 'Records'} {shown}{of}.</p>")
    body.append(_rejections_table(page.rows) if rejections else _records_table(page.rows, verdicts))
    body.append(_pages(filters, page.more, page.total))
    return layout("Rejections" if rejections else "Browse", "".join(body), NAV, "/browse")


def _pages(filters: Filters, more: bool, total: int | None) -> str:
    links = []
    if filters.page > 0:
        links += [link("/browse", "first page", filters.query(page=0))]
        links += [link("/browse", "← previous page", filters.query(page=filters.page - 1))]
    if more:
        links.append(link("/browse", "next page →", filters.query(page=filters.page + 1)))
        if total is not None:
            links.append(link("/browse", "last page", filters.query(page=(total - 1) // PAGE_SIZE)))
    where = f"page {filters.page + 1:,}" + (f" of {max(1, -(-total // PAGE_SIZE)):,}" if total is not None else "")
    return f'<nav class="pages" aria-label="pages of results"><span>{where}</span> {" ".join(links)}</nav>'


def _question_link(row: dict[str, Any]) -> str:
    return link("/question", row.get("problem_id"), {"id": row.get("problem_id")})


def _judge_filter_problem(written: str) -> str:
    """A sentence when the judge filter cannot be read (the rows are then shown without it)."""
    if not written:
        return ""
    try:
        JudgeCondition.parse(written)
    except ValueError as error:
        return f"<p class=bad>{text(error)}; shown without it.</p>"
    return ""


def _records_table(rows: list[dict[str, Any]], verdicts: Verdicts) -> str:
    """A column per rubric when the build was judged: the score, and the judge's reason below it."""
    rubrics = verdicts.rubrics
    lines = []
    for row in rows:
        usage = row.get("usage") or {}
        judged = verdicts.by_key.get(row.get("key") or "", {})
        lines.append(
            [
                _question_link(row),
                text(row.get("subset")),
                text(row.get("sample_index")),
                mark(row),
                text(row.get("predicted_answer")) + f" <span class=meta>(gold {text(row.get('gold_answer'))})</span>",
                text(row.get("answer_source")),
                number(usage.get("completion_tokens")),
                f"<pre>{text(row.get('question'))}</pre>",
                f"<pre>{text(row.get('rationale'))}</pre>",
                *(_verdict_cell(judged.get(rubric)) for rubric in rubrics),
            ]
        )
    headers = ["problem", "subset", "sample", "correct", "answer", "read from", "completion tokens", "question"]
    return table([*headers, "rationale", *(f"judge: {rubric}" for rubric in rubrics)], lines)


def _verdict_cell(verdict: Verdict | None) -> str:
    return "-" if verdict is None else f"<b>{text(verdict.score)}</b> <span class=meta>{text(verdict.reason)}</span>"


def _rejections_table(rows: list[dict[str, Any]]) -> str:
    lines = [
        [
            _question_link(row),
            text(row.get("subset")),
            text(row.get("sample_index")),
            mark(row),
            text(row.get("detail")),
            f"<pre>{text(row.get('question'))}</pre>",
            f"<pre>{text(row.get('raw_response'))}</pre>" if row.get("raw_response") else "<i>none</i>",
        ]
        for row in rows
    ]
    return table(["problem", "subset", "sample", "reason", "detail", "question", "raw response"], lines)
