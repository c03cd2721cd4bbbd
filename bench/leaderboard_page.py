"""The leaderboard as one self-contained HTML page: where the numbers come from, the tables,
accuracy-against-cost plots (inline SVG) and a card per cell; `write_leaderboard` writes it
and `leaderboard.md` beside it.

The page loads nothing from elsewhere (no fonts, scripts or images outside it), fits a
phone's width (wide tables scroll inside their box; plots scale) and prints.
"""

from __future__ import annotations

import base64
import html
import json
from collections import Counter
from collections.abc import Iterable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from vidbench.bench.leaderboard import (
    MODALITY_NAMES,
    Group,
    compared_summary,
    footnote,
    markdown,
    matrices,
    md_escape,
    number,
    numeric_columns,
    result_cards,
    tables,
)
from vidbench.bench.plots import FONT_PT, plot_order, plots
from vidbench.bench.results import RunRecord
from vidbench.bench.significance import predictions_of
from vidbench.datasets.files import atomic_write_text

STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0 auto;
  padding:1em;max-width:1400px;color:#222;line-height:1.4}
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:1.6em}h3{font-size:1em;margin:0 0 .4em}
.scroll{overflow-x:auto;max-width:100%}
table{border-collapse:collapse;font-size:13px}
th,td{border:1px solid #ccc;padding:3px 5px;white-space:nowrap}
th{background:#f3f3f3;text-align:left}td.num{text-align:right;font-variant-numeric:tabular-nums}
dl.about{display:grid;grid-template-columns:max-content 1fr;gap:.2em 1em;font-size:14px}
dl.about dt{font-weight:600}dl.about dd{margin:0;overflow-wrap:anywhere}
code{font-size:13px}
figure{margin:1em 0}figure img{display:block;width:100%;max-width:820px;height:auto}
figcaption{font-size:13px;color:#555}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(min(100%,22em),1fr));gap:.8em}
.card{border:1px solid #ccc;border-radius:4px;padding:.6em;font-size:13px}
.card dl{margin:0}.card dt{font-weight:600;color:#555}
.card dd{margin:0 0 .3em;overflow-wrap:anywhere}
.failed{border-color:#c33}
th:first-child,td:first-child{position:sticky;left:0;background:#fff;z-index:1;
  white-space:normal;min-width:7em;max-width:11em}
th:first-child{background:#f3f3f3}
.plots{display:grid;grid-template-columns:repeat(auto-fill,minmax(min(100%,30em),1fr));gap:1em}
.plots figure{margin:0}.plots img{max-width:100%}
pre{font-size:13px}
details{margin:.4em 0}summary{cursor:pointer}
"""


def provenance(records: list[RunRecord], command: str | None = None) -> dict[str, str]:
    """Where the numbers come from: when the cells finished, the commands that ran them,
    the code versions (commits), the machines; and when and how this page was written."""
    finished = sorted(r.finished[:10] for r in records if r.finished)
    machines = {
        f"{r.costs['device']} ({r.costs.get('device_type', '?')}, "
        f"{r.costs.get('cpu_threads', '?')} threads)"
        for r in records
        if r.costs
    }
    about = {
        "cells finished": " to ".join(sorted({finished[0], finished[-1]})) if finished else "",
        "run by": counted(r.command for r in records if r.command) or "not recorded",
        "code (commit)": counted(str(r.code_version) for r in records),
        "machine": "; ".join(sorted(machines)) or "not recorded",
        "written": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    }
    if command:
        about["written"] += f" by {command}"
    return about


def counted(values: Iterable[str]) -> str:
    """`a (3 cells); b (1 cell)`: each value with the number of records that carry it."""
    counts = Counter(values)
    return "; ".join(f"{v} ({n} cell{'s' * (n != 1)})" for v, n in sorted(counts.items()))


def html_table(header: list[str], rows: list[list[str]]) -> str:
    escape = html.escape
    numeric = numeric_columns(header)
    parts = ["<div class='scroll'><table><thead><tr>"]
    parts += [f"<th scope='col'>{escape(h)}</th>" for h in header]
    parts.append("</tr></thead><tbody>")
    for row in rows:
        cells = [
            f"<td{' class=num' if numeric[i] else ''}>{escape(c)}</td>" for i, c in enumerate(row)
        ]
        parts.append("<tr>" + "".join(cells) + "</tr>")
    parts.append("</tbody></table></div>")
    return "".join(parts)


def html_page(
    records: list[RunRecord],
    title: str,
    command: str | None = None,
    verdicts: dict[str, dict[str, str]] | None = None,
    summary: dict[Group, dict[str, Any]] | None = None,
) -> str:
    """The whole page, self-contained; `summary` is `compared_summary(records)`, made here
    when not given."""
    escape = html.escape
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width, initial-scale=1'>",
        f"<title>{escape(title)}</title><style>{STYLE}</style></head><body>",
        f"<h1>{escape(title)}</h1><dl class='about'>",
    ]
    for key, value in provenance(records, command).items():
        parts.append(f"<dt>{escape(key)}</dt><dd>{escape(value)}</dd>")
    parts.append("</dl>")
    for name, verdict in (verdicts or {}).items():
        parts.append(
            f"<h2>{escape(VERDICT_NAMES.get(name, name))}: {escape(verdict['verdict'])}</h2>"
            f"<p>{escape(verdict.get('when', ''))}</p>"
            f"<div class='scroll'><pre>{escape(verdict.get('report', ''))}</pre></div>"
        )
    parts.append(f"<p>{escape(footnote(records))}</p>")
    summary = compared_summary(records) if summary is None else summary
    for name, (header, rows) in tables(summary).items():
        parts.append(f"<h2>{escape(name)}</h2>{html_table(header, rows)}")
    for name, (header, rows) in matrices(summary).items():
        heading = escape(f"Top-1 % by dataset: {name} (mean ± s.d. over seeds)")
        parts.append(f"<h2>{heading}</h2>{html_table(header, rows)}")
    parts.append("<h2>Accuracy per seed, and against cost</h2><div class='plots'>")
    for plot in plots(summary):
        data = base64.b64encode(plot.svg.encode()).decode()
        series = escape(json.dumps(plot.series), quote=True)
        caption = escape(plot.caption)
        parts.append(
            f"<figure data-series='{series}' data-font-pt='{FONT_PT}'><img alt='{caption}' "
            f"src='data:image/svg+xml;base64,{data}'><figcaption>{caption}</figcaption></figure>"
        )
    parts.append("</div>")
    parts.extend(class_details(summary))
    parts.append("<h2>Result cards</h2><div class='cards'>")
    for card in result_cards(records):
        status = " failed" if card["status"] != "ok" else ""
        parts.append(f"<section class='card{status}'><h3>{escape(card['cell'])}</h3><dl>")
        parts.extend(
            f"<dt>{escape(k.replace('_', ' '))}</dt><dd>{escape(str(v))}</dd>"
            for k, v in card.items()
            if k != "cell"
        )
        parts.append("</dl></section>")
    parts.append("</div></body></html>")
    return "\n".join(parts)


MATRIX_CLASSES = 20  # a confusion matrix on the page up to this many classes


def class_details(summary: dict[Group, dict[str, Any]]) -> list[str]:
    """Per configuration whose records kept predictions, collapsed: per-class accuracy
    (the seeds' predictions pooled) and, up to `MATRIX_CLASSES` classes, the confusion
    matrix (rows: true class, columns: predicted), both by torchmetrics."""
    import torch
    from torchmetrics.functional.classification import multiclass_confusion_matrix

    escape = html.escape
    parts = []
    for key in sorted(summary, key=plot_order):
        entry = summary[key]
        try:
            kept = predictions_of(entry["records"]) if entry["records"] else []
        except ValueError:
            continue
        if not kept:
            continue
        classes = entry["num_classes"]
        preds = torch.from_numpy(np.concatenate([k.classes[:, 0] for k in kept]))
        labels = torch.from_numpy(np.concatenate([k.labels for k in kept]))
        matrix = multiclass_confusion_matrix(preds, labels, num_classes=classes)
        totals = matrix.sum(dim=1)
        header = ["Class", "Videos (all seeds)", "Top-1 %"]
        rows = [
            [
                str(c),
                str(int(totals[c])),
                number(100 * float(matrix[c, c] / totals[c])) if totals[c] else "",
            ]
            for c in range(classes)
        ]
        title = (
            f"{entry['label']} · {MODALITY_NAMES[key.modality]} · {key.dataset} split {key.fold}"
        )
        parts.append(f"<details><summary>{escape(title)}: per class</summary>")
        parts.append(html_table(header, rows))
        if classes <= MATRIX_CLASSES:
            grid = [[str(c)] + [str(int(v)) for v in matrix[c]] for c in range(classes)]
            parts.append("<p>Confusion matrix (rows: true class; columns: predicted)</p>")
            parts.append(html_table(["true \\ predicted", *map(str, range(classes))], grid))
        parts.append("</details>")
    if parts:
        parts.insert(0, "<h2>Per class (from the kept predictions)</h2>")
    return parts


VERDICT_NAMES = {
    "sanity": "Sanity check (motion models beat frame averaging)",
    "regress": "Regression check against the baseline",
}


def write_leaderboard(
    records: list[RunRecord],
    out: Path,
    title: str,
    command: str | None = None,
    verdicts: dict[str, dict[str, str]] | None = None,
) -> dict[str, Path]:
    """`leaderboard.md` (with result cards) and a self-contained `leaderboard.html` in `out`;
    `command` is what wrote them, `verdicts` the sweep's checks ({name: {verdict, report}},
    `results.read_verdicts`), both shown on the page."""
    out.mkdir(parents=True, exist_ok=True)
    about = "\n".join(f"- {k}: {md_escape(v)}" for k, v in provenance(records, command).items())
    checks = "".join(
        f"\n**{VERDICT_NAMES.get(name, name)}: {md_escape(v['verdict'])}** "
        f"({md_escape(v.get('when', ''))})\n\n```\n{v.get('report', '')}\n```\n"
        for name, v in (verdicts or {}).items()
    )
    summary = compared_summary(records)  # once, for both files
    text = f"{about}\n{checks}\n{markdown(records, summary)}\n### Result cards\n"
    for card in result_cards(records):
        text += f"\n**{md_escape(card['cell'])}**: " + "; ".join(
            f"{k} {md_escape(v)}" for k, v in card.items() if k != "cell"
        )
        text += "\n"
    paths = {"markdown": out / "leaderboard.md", "html": out / "leaderboard.html"}
    atomic_write_text(paths["markdown"], f"# {md_escape(title)}\n\n{text}")
    atomic_write_text(paths["html"], html_page(records, title, command, verdicts, summary))
    return paths
