"""The leaderboard as one self-contained HTML page: where the numbers come from, the tables,
accuracy-against-cost plots (inline SVG) and a card per cell; `write_leaderboard` writes it
and `leaderboard.md` beside it.

The page loads nothing from elsewhere (no fonts, scripts or images outside it), fits a
phone's width (wide tables scroll inside their box; plots scale) and prints.
"""

from __future__ import annotations

import base64
import html
import io
import math
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from vidbench.bench.leaderboard import (
    MODALITY_NAMES,
    PROTOCOL_ORDER,
    TABLE_SUFFIX,
    TEXT_COLUMNS,
    Group,
    footnote,
    markdown,
    matrices,
    md_escape,
    result_cards,
    summarise,
    tables,
)
from vidbench.bench.paper import ARCH_NAMES, PAPER_ORDER
from vidbench.bench.results import RunRecord
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
        "run by": "; ".join(sorted({r.command for r in records if r.command})) or "not recorded",
        "code (commit)": ", ".join(sorted({str(r.code_version) for r in records})),
        "machine": "; ".join(sorted(machines)) or "not recorded",
        "written": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    }
    if command:
        about["written"] += f" by {command}"
    return about


def series_name(config: Any, several: dict[str, bool]) -> str:
    """A plot legend's label: architecture and modality, and protocol, dataset and split
    only when the plot has several."""
    parts = [ARCH_NAMES.get(config.arch, config.arch), MODALITY_NAMES[config.modality]]
    if several["protocol"]:
        parts.append(config.protocol)
    if several["dataset"]:
        parts.append(config.dataset)
    if several["fold"]:
        parts.append(f"split {config.fold}")
    return " · ".join(parts)


def plot_order(key: Group) -> tuple:
    """The paper's order: architecture, then protocol (Original, Fixed, Full-FT), modality."""
    arch = [*PAPER_ORDER, key.arch].index(key.arch)
    protocol = [*PROTOCOL_ORDER, key.protocol].index(key.protocol)
    modality = list(MODALITY_NAMES).index(key.modality)
    return (arch, protocol, key.dataset, modality, key.fold, str(key.start))


def plots(summary: dict[Group, dict[str, Any]]) -> list[tuple[str, str]]:
    """(SVG, caption) of `summarise`'s groups, top-1 against multiply-adds and against
    inference clips/s: a legend
    entry per architecture and modality (markers by modality), error bars of the seed
    spread, a dashed line at chance."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib import ticker

    matplotlib.rcParams["svg.hashsalt"] = "vidbench"  # the same records, the same file
    entries = [
        summary[k] for k in sorted(summary, key=plot_order) if summary[k]["top1"] is not None
    ]
    several = {
        field: len({getattr(e["config"], field) for e in entries}) > 1
        for field in ("protocol", "dataset", "fold")
    }
    markers = {"rgb": "o", "flow": "s", "rgb+flow": "D"}
    chances = sorted({(e["chance"], e["num_classes"]) for e in entries if e["chance"]})
    colours = plt.get_cmap("tab10").colors
    out = []
    for field, label, caption in (
        ("gmacs", "multiply-adds per clip (GMACs, log scale)", "Top-1 against cost per clip"),
        ("infer_clips_per_s", "inference throughput (clips/s, log scale)",
         "Top-1 against inference speed on the machine that ran each cell"),
    ):  # fmt: skip
        figure, axes = plt.subplots(figsize=(7, 4.2))
        for i, entry in enumerate(e for e in entries if e[field]):
            axes.errorbar(
                entry[field], entry["top1"], yerr=entry["top1_std"] or 0, capsize=3,
                marker=markers[entry["config"].modality], color=colours[i % len(colours)],
                linestyle="none", markersize=7, label=series_name(entry["config"], several),
            )  # fmt: skip
        for chance, classes in chances:
            axes.axhline(chance, color="grey", linestyle="--", linewidth=1)
            axes.annotate(
                f"chance ({classes} classes)", (0.01, chance), xytext=(0, 3), fontsize=8,
                xycoords=("axes fraction", "data"), textcoords="offset points", color="grey",
            )  # fmt: skip
        axes.set_xscale("log")
        xs = [e[field] for e in entries if e[field]]
        if xs:  # room around the points, and tick labels that neither collide nor vanish
            low, high = min(xs) / 1.6, max(xs) * 1.6
            axes.set_xlim(low, high)
            decades = math.log10(high / low)
            subs = (
                (1.0, 2.0, 3.0, 5.0)
                if decades <= 1.5
                else (1.0, 2.0, 5.0)
                if decades <= 3
                else (1.0,)
            )
            axes.xaxis.set_major_locator(ticker.LogLocator(subs=subs))
        axes.xaxis.set_major_formatter(ticker.FuncFormatter(lambda v, _: f"{v:g}"))
        axes.xaxis.set_minor_formatter(ticker.NullFormatter())
        axes.set_xlabel(label)
        axes.set_ylabel("video top-1 (%), mean ± s.d. over seeds")
        axes.set_ylim(0, 105)
        axes.grid(alpha=0.3)
        handles, labels = axes.get_legend_handles_labels()
        axes.legend(
            handles, labels, loc="upper center", bbox_to_anchor=(0.5, -0.16), fontsize=8,
            ncol=2 if len(labels) > 3 else 1, frameon=False,
        )  # fmt: skip
        buffer = io.StringIO()
        figure.savefig(buffer, format="svg", bbox_inches="tight", metadata={"Date": None})
        plt.close(figure)
        out.append((buffer.getvalue(), caption))
    return out


def html_table(header: list[str], rows: list[list[str]], text_columns: int = TEXT_COLUMNS) -> str:
    escape = html.escape
    parts = ["<div class='scroll'><table><thead><tr>"]
    parts += [f"<th scope='col'>{escape(h)}</th>" for h in header]
    parts.append("</tr></thead><tbody>")
    for row in rows:
        cells = [
            f"<td{'' if i < text_columns else ' class=num'}>{escape(c)}</td>"
            for i, c in enumerate(row)
        ]
        parts.append("<tr>" + "".join(cells) + "</tr>")
    parts.append("</tbody></table></div>")
    return "".join(parts)


def html_page(records: list[RunRecord], title: str, command: str | None = None) -> str:
    """The whole page, self-contained."""
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
    parts.append(f"<p>{escape(footnote(records))}</p>")
    summary = summarise(records)
    for name, (header, rows) in tables(summary).items():
        title = escape(f"Protocol: {name} {TABLE_SUFFIX}")
        parts.append(f"<h2>{title}</h2>{html_table(header, rows)}")
    for name, (header, rows) in matrices(summary).items():
        title = escape(f"Top-1 % by dataset: {name} (mean ± s.d. over seeds)")
        parts.append(f"<h2>{title}</h2>{html_table(header, rows, text_columns=2)}")
    parts.append("<h2>Accuracy against cost</h2>")
    for svg, caption in plots(summary):
        data = base64.b64encode(svg.encode()).decode()
        parts.append(
            f"<figure><img alt='{escape(caption)}' src='data:image/svg+xml;base64,{data}'>"
            f"<figcaption>{escape(caption)}</figcaption></figure>"
        )
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


def write_leaderboard(
    records: list[RunRecord], out: Path, title: str, command: str | None = None
) -> dict[str, Path]:
    """`leaderboard.md` (with result cards) and a self-contained `leaderboard.html` in `out`;
    `command` is what wrote them (shown on the page)."""
    out.mkdir(parents=True, exist_ok=True)
    about = "\n".join(f"- {k}: {md_escape(v)}" for k, v in provenance(records, command).items())
    text = f"{about}\n\n{markdown(records)}\n### Result cards\n"
    for card in result_cards(records):
        text += f"\n**{md_escape(card['cell'])}**: " + "; ".join(
            f"{k} {md_escape(v)}" for k, v in card.items() if k != "cell"
        )
        text += "\n"
    paths = {"markdown": out / "leaderboard.md", "html": out / "leaderboard.html"}
    atomic_write_text(paths["markdown"], f"# {md_escape(title)}\n\n{text}")
    atomic_write_text(paths["html"], html_page(records, title, command))
    return paths
