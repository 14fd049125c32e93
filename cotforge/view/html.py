"""The viewer's markup: every value from the data goes through `text` (html.escape), so teacher output, which is
untrusted, always renders as text. Plots are inline SVG drawn from numbers: no file is ever served."""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import urlencode

STYLE = """
body{font:15px/1.45 system-ui,sans-serif;margin:0;color:#1b1b1b;background:#fafafa}
header{background:#23395b;padding:.5rem 1rem}header a{color:#fff;margin-right:1.2rem;text-decoration:none}
header a[aria-current]{text-decoration:underline}main{padding:1rem 1.5rem;max-width:100rem}
table{border-collapse:collapse;margin:.5rem 0 1.5rem;background:#fff}
th,td{border:1px solid #ccd;padding:.3rem .5rem;text-align:left;vertical-align:top}
th{background:#eef}td.n{text-align:right;font-variant-numeric:tabular-nums}
pre{white-space:pre-wrap;word-break:break-word;margin:.3rem 0;font:13px/1.4 ui-monospace,monospace;max-width:60rem}
.ok{color:#11682a;font-weight:600}.bad{color:#a3161b;font-weight:600}.rej{color:#8a4b00;font-weight:600}
.answer{min-width:13rem}.meta{color:#555;font-size:13px}form.filters{display:flex;flex-wrap:wrap;gap:.6rem}
form.filters label{display:flex;flex-direction:column;font-size:13px}nav.pages a{margin-right:1rem}
figure{display:inline-block;margin:0 1.5rem 1rem 0;background:#fff;border:1px solid #ccd;padding:.5rem}
"""
PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf")


def text(value: Any) -> str:
    """A value from the data, safe in HTML text and attributes."""
    return html.escape("" if value is None else str(value), quote=True)


def link(path: str, label: Any, params: Mapping[str, Any] | None = None, current: bool = False) -> str:
    query = f"?{urlencode(params)}" if params else ""
    return f'<a href="{text(path + query)}"{" aria-current=page" if current else ""}>{text(label)}</a>'


def layout(title: str, body: str, nav: Sequence[tuple[str, str]], here: str, head: str = "") -> str:
    links = "".join(link(path, label, current=path == here) for path, label in nav)
    return (
        f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">{head}'
        f"<title>{text(title)} · cotforge view</title><style>{STYLE}</style></head>"
        f'<body><header><nav aria-label="pages">{links}</nav></header><main><h1>{text(title)}</h1>{body}</main>'
        "</body></html>\n"
    )


def table(headers: Sequence[str], rows: Iterable[Sequence[str]], caption: str = "", row_headers: bool = True) -> str:
    """`rows` hold markup already escaped (use `text`); the first cell of a row is its header when `row_headers`."""
    head = "".join(f'<th scope="col">{text(h)}</th>' for h in headers)
    body = []
    for row in rows:
        cells = [f'<th scope="row">{row[0]}</th>' if row_headers else f"<td>{row[0]}</td>"]
        cells += [f'<td class="n">{c[3:]}</td>' if c.startswith("#n#") else f"<td>{c}</td>" for c in row[1:]]
        body.append("<tr>" + "".join(cells) + "</tr>")
    caption_html = f"<caption>{text(caption)}</caption>" if caption else ""
    return f"<table>{caption_html}<thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def number(value: float | int | None, spec: str = ",") -> str:
    """A numeric table cell (right-aligned): `#n#` marks it for `table`."""
    return "#n#" + ("-" if value is None else text(format(value, spec)))


def select(name: str, label: str, options: Iterable[tuple[str, str]], chosen: str) -> str:
    items = "".join(
        f'<option value="{text(value)}"{" selected" if value == chosen else ""}>{text(shown)}</option>'
        for value, shown in [("", "any"), *options]
    )
    return f'<label for="f-{name}">{text(label)}<select id="f-{name}" name="{name}">{items}</select></label>'


def mark(row: Mapping[str, Any]) -> str:
    if row["kind"] != "record":
        return (
            f'<span class="rej">{"failed" if row["kind"] == "failed" else "rejected"}: {text(row.get("reason"))}</span>'
        )
    return '<span class="ok">✓ correct</span>' if row["correct"] else '<span class="bad">✗ incorrect</span>'


def level_label(level: int | None) -> str:
    return "no level" if level is None else f"level {level}"


def line_plot(
    title: str, series: Mapping[str, Sequence[tuple[float, float]]], x_label: str, y_label: str, percent: bool = False
) -> str:
    """An SVG line chart, one line per series, its numbers also in each point's title (read by screen readers)."""
    width, height, left, bottom, top, right = 460, 260, 56, 40, 14, 12
    points = [p for line in series.values() for p in line]
    if not points:
        return ""
    xs = sorted({x for x, _ in points})
    y_max = max(1.0 if percent else max(y for _, y in points), 1e-9)
    x_span = (xs[-1] - xs[0]) or 1

    def at(x: float, y: float) -> tuple[float, float]:
        px = left + (x - xs[0]) / x_span * (width - left - right) if len(xs) > 1 else (left + width - right) / 2
        return px, height - bottom - y / y_max * (height - bottom - top)

    shown = (lambda v: f"{v:.0%}") if percent else (lambda v: f"{v:,.0f}")
    parts = [f'<line x1="{left}" y1="{height - bottom}" x2="{width - right}" y2="{height - bottom}" stroke="#555"/>']
    parts.append(f'<line x1="{left}" y1="{top}" x2="{left}" y2="{height - bottom}" stroke="#555"/>')
    for tick in (0, 0.5, 1):
        _, py = at(xs[0], tick * y_max)
        parts.append(
            f'<text x="{left - 6}" y="{py + 4:.1f}" text-anchor="end" font-size="11">{shown(tick * y_max)}</text>'
        )
    for x in xs:
        px, _ = at(x, 0)
        parts.append(f'<text x="{px:.1f}" y="{height - bottom + 16}" text-anchor="middle" font-size="11">{x:g}</text>')
    parts.append(
        f'<text x="{(left + width) / 2}" y="{height - 6}" text-anchor="middle" font-size="12">{text(x_label)}</text>'
    )
    parts.append(
        f'<text x="14" y="{(top + height - bottom) / 2}" font-size="12" text-anchor="middle" '
        f'transform="rotate(-90 14 {(top + height - bottom) / 2})">{text(y_label)}</text>'
    )
    legend = []
    for i, (label, line) in enumerate(series.items()):
        colour = PALETTE[i % len(PALETTE)]
        coords = [at(x, y) for x, y in sorted(line)]
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y in coords)
        parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{path}"/>')
        for (x, y), (px, py) in zip(sorted(line), coords, strict=True):
            parts.append(
                f'<circle cx="{px:.1f}" cy="{py:.1f}" r="3.5" fill="{colour}"><title>{text(label)}: '
                f"{x:g} → {shown(y)}</title></circle>"
            )
        legend.append(f'<span style="color:{colour}">■</span> {text(label)}')
    svg = (
        f'<svg role="img" aria-label="{text(title)}" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg">{"".join(parts)}</svg>'
    )
    return f"<figure>{svg}<figcaption>{text(title)}<br>{' '.join(legend)}</figcaption></figure>"


def json_block(value: Any) -> str:
    """A JSON document of unknown shape (cotforge_stats.json): mappings of mappings of plain values become tables,
    anything else is shown as indented JSON."""
    import json

    if isinstance(value, Mapping) and value and all(isinstance(v, Mapping) for v in value.values()):
        columns = list(dict.fromkeys(k for v in value.values() for k, item in v.items() if _plain(item)))
        nested = [(k, v) for k, v in value.items() if any(not _plain(item) for item in v.values())]
        rows = [[text(name), *(_cell(row.get(c)) for c in columns)] for name, row in value.items()]
        out = table(["", *columns], rows)
        for name, row in nested:
            rest = {k: v for k, v in row.items() if not _plain(v)}
            out += (
                f"<details><summary>{text(name)}: more</summary><pre>{text(json.dumps(rest, indent=1))}</pre></details>"
            )
        return out
    return f"<pre>{text(json.dumps(value, indent=1, ensure_ascii=False))}</pre>"


def _plain(value: Any) -> bool:
    return value is None or isinstance(value, str | int | float | bool)


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return number(value, ",.4g")
    if isinstance(value, int) and not isinstance(value, bool):
        return number(value)
    return text(value)
