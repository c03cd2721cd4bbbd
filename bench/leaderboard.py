"""Leaderboards from run records: Markdown shaped like the paper's tables, and an HTML page.

One table per protocol and start (what the networks started from: scratch, ImageNet,
Kinetics, ImageNet then Kinetics), so the paper's Tables 2 and 3 (Original, from scratch
or ImageNet), 4 (Original / Fixed / Full-FT, with or without ImageNet) and 5 (3-split
means) each have their counterpart where a sweep fills them. Rows are architectures;
columns are dataset (and split) x RGB / Flow / RGB+Flow, and the mean over splits where
all three ran. A value is video-level top-1 (%), the mean over seeds with their standard
deviation and top-5 where present, and the paper's number beside it only where every
condition matches (`paper.paper_result`). Failed cells show as `failed` and are counted.
"""

from __future__ import annotations

import base64
import html
import io
import statistics
from collections import defaultdict
from pathlib import Path
from typing import Any, NamedTuple

from vidbench.bench.paper import ARCH_NAMES, PAPER_ORDER, PaperResult, paper_result
from vidbench.bench.results import RunRecord
from vidbench.datasets.files import atomic_write_text

MODALITY_NAMES = {"rgb": "RGB", "flow": "Flow", "rgb+flow": "RGB+Flow"}
SPLIT_FORMATS = ("ucf101", "hmdb51")  # datasets whose folds are official splits


class Group(NamedTuple):
    """A cell without its seed (what seeds are averaged over), and what it started from."""

    protocol: str
    start: str | None
    arch: str
    dataset: str
    fold: int
    modality: str


def group_of(record: RunRecord) -> Group:
    c = record.config
    return Group(c.protocol, record.start, c.arch, c.dataset, c.fold, c.modality)


def summarise(records: list[RunRecord]) -> dict[Group, dict[str, Any]]:
    """Per cell-without-seed: top-1/top-5 means and spreads (in %), seeds, failures, costs,
    the paper's result under the same conditions; `config` is the first record's `Cell`."""
    groups: dict[Group, list[RunRecord]] = defaultdict(list)
    for record in records:
        if record.config is not None:
            groups[group_of(record)].append(record)
    summary = {}
    for key, runs in groups.items():
        ok = [r for r in runs if r.status == "ok"]
        top1 = [r.top1 for r in ok]
        top5 = [100 * r.metrics.video["top5"] for r in ok]
        official = ok[0].data.official_classes if ok else None
        summary[key] = {
            "config": runs[0].config,
            "official": official,
            "seeds": len(ok),
            "failed": len(runs) - len(ok),
            "top1": statistics.mean(top1) if top1 else None,
            "top1_std": statistics.stdev(top1) if len(top1) > 1 else None,
            "top5": statistics.mean(top5) if top5 else None,
            "num_classes": ok[0].data.num_classes if ok else None,
            "params": ok[0].costs["params"] if ok else None,
            "gmacs": ok[0].costs["gmacs_per_clip"] if ok else None,
            "infer_clips_per_s": ok[0].costs["infer_clips_per_s"] if ok else None,
            "paper": paper_result(
                key.arch, official, key.fold, key.modality, key.protocol, key.start
            ),
        }
    return summary


NUMERIC_COLUMNS = [
    "protocol", "start", "architecture", "dataset", "split", "modality", "top1", "top1_std",
    "top5", "seeds", "failed", "params", "gmacs", "infer_clips_per_s", "paper_top1",
    "paper_table",
]  # fmt: skip


def numeric_rows(summary: dict[Group, dict[str, Any]]) -> list[list[Any]]:
    """One row per summary entry, numbers as numbers (None where absent), in the order of
    `NUMERIC_COLUMNS`: what a W&B Table or a spreadsheet can sort and plot."""
    rows = []
    for key, entry in sorted(summary.items(), key=lambda item: tuple(map(str, item[0]))):
        paper = entry["paper"]
        rows.append([
            key.protocol, key.start, ARCH_NAMES.get(key.arch, key.arch), key.dataset, key.fold,
            key.modality, entry["top1"], entry["top1_std"], entry["top5"], entry["seeds"],
            entry["failed"], entry["params"], entry["gmacs"], entry["infer_clips_per_s"],
            paper.top1 if paper else None, paper.table if paper else None,
        ])  # fmt: skip
    return rows


def format_paper(paper: PaperResult | None) -> str:
    if paper is None:
        return ""
    top5 = f" [top-5 {paper.top5:.1f}]" if paper.top5 is not None else ""
    return f" / paper {paper.top1:.1f}{top5} (Table {paper.table})"


def format_value(entry: dict[str, Any] | None) -> str:
    if entry is None:
        return ""
    if entry["top1"] is None:
        return "failed"
    text = f"{entry['top1']:.1f}"
    if entry["top1_std"] is not None:
        text += f" ± {entry['top1_std']:.1f} ({entry['seeds']} seeds)"
    if entry["top5"] is not None:
        text += f" [top-5 {entry['top5']:.1f}]"
    text += format_paper(entry["paper"])
    if entry["failed"]:
        text += f" ({entry['failed']} failed)"
    return text


def tables(summary: dict[Group, dict[str, Any]]) -> dict[str, tuple[list[str], list[list[str]]]]:
    """Per protocol and start ("scratch, from imagenet"): (header, rows) of its table."""
    out = {}
    tables_of = sorted({(k.protocol, k.start) for k in summary}, key=lambda p: (p[0], str(p[1])))
    for protocol, start in tables_of:
        keys = [k for k in summary if (k.protocol, k.start) == (protocol, start)]
        columns = sorted(
            {(k.dataset, k.fold, k.modality) for k in keys},
            key=lambda c: (c[0], c[1], list(MODALITY_NAMES).index(c[2])),
        )
        folds = defaultdict(set)
        for dataset, fold, _ in columns:
            folds[dataset].add(fold)
        formats = {k.dataset: summary[k]["config"].data.format for k in keys}
        official = {k.dataset: summary[k]["official"] for k in keys}
        has_splits = {d for d in folds if len(folds[d]) > 1 or formats[d] in SPLIT_FORMATS}
        header = ["architecture"] + [
            f"{d}{f' split {f}' if d in has_splits else ''} {MODALITY_NAMES[m]}"
            for d, f, m in columns
        ]
        means = sorted({(d, m) for d, f, m in columns if len(folds[d]) > 1})
        header += [f"{d} mean of {len(folds[d])} splits {MODALITY_NAMES[m]}" for d, m in means]
        archs = sorted({k.arch for k in keys}, key=lambda a: ([*PAPER_ORDER, a]).index(a))
        rows = []
        by_cell = {(k.arch, k.dataset, k.fold, k.modality): summary[k] for k in keys}
        for arch in archs:
            row = [ARCH_NAMES.get(arch, arch)]
            row += [format_value(by_cell.get((arch, d, f, m))) for d, f, m in columns]
            for dataset, modality in means:
                values = [
                    by_cell[(arch, dataset, f, modality)]["top1"]
                    for f in sorted(folds[dataset])
                    if (by_cell.get((arch, dataset, f, modality)) or {}).get("top1") is not None
                ]
                complete = len(values) == len(folds[dataset])
                paper = (  # the paper's means are over the three official splits
                    paper_result(arch, official[dataset], "mean", modality, protocol, start)
                    if len(folds[dataset]) == 3
                    else None
                )
                cell = f"{statistics.mean(values):.1f}" + format_paper(paper) if complete else ""
                row.append(cell)
            rows.append(row)
        label = "unknown (a checkpoint that does not say)" if start is None else start
        out[f"{protocol}, from {label}"] = (header, rows)
    return out


def markdown(records: list[RunRecord]) -> str:
    summary = summarise(records)
    parts = []
    for title, (header, rows) in tables(summary).items():
        parts.append(f"### Protocol: {title} (video-level top-1 %, mean over seeds)\n")
        parts.append("| " + " | ".join(header) + " |")
        parts.append("|" + "---|" * len(header))
        parts.extend("| " + " | ".join(row) + " |" for row in rows)
        parts.append("")
    failed = sum(1 for r in records if r.status != "ok")
    parts.append(
        f"{len(records) - failed} cells finished, {failed} failed. A paper number (Tables "
        "2-5) is shown only where the dataset (the real one, recognised by its class list), "
        "split, modality, protocol and start all match."
    )
    return "\n".join(parts) + "\n"


def result_cards(records: list[RunRecord]) -> list[dict[str, str]]:
    """One card per cell: what makes its numbers comparable with another's."""
    cards = []
    for record in records:
        card = {"cell": record.cell, "status": record.status}
        if record.status != "ok":
            card["error"] = record.error or ""
        else:
            data, costs, spec = record.data, record.costs, record.config.input
            test = data.test or {}
            card.update(
                views=f"{spec.test_clips} clip(s) x {spec.test_crops} crop(s)"
                + (" (whole video)" if spec.full_video_test else ""),
                input=", ".join(f"{k} {v}" for k, v in costs["input_shape"].items()),
                videos=f"{data.evaluated_videos} evaluated of {test.get('expected', '?')} "
                f"listed ({test.get('missing', 0)} missing, {test.get('unreadable', 0)} "
                f"unreadable); {(data.train or {}).get('substituted', 0)} substituted "
                "in training",
                dataset_copy=f"{data.copy_files} files, {data.copy_bytes / 2**30:.2f} GiB",
                decoder=str(data.decoder),
                device=f"{costs['device']} ({costs['precision']}, batch {costs['batch_size']})",
                cost=f"{costs['gmacs_per_clip']:.2f} GMACs/clip, {costs['params']:,} params, "
                f"{costs['infer_clips_per_s']:.1f} clips/s inference",
                versions=f"torch {costs['torch']}, "
                + (f"cuDNN {costs['cudnn']}, " if costs.get("cudnn") else "")
                + f"vidbench {record.code_version}",
                config_hash=str(record.config_hash),
            )
        cards.append(card)
    return cards


def plots(records: list[RunRecord]) -> list[str]:
    """PNG plots (base64) of top-1 against multiply-adds and against inference clips/s."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points = [e for e in summarise(records).values() if e["top1"] is not None]
    images = []
    for field, label in (
        ("gmacs", "GMACs per clip (log)"),
        ("infer_clips_per_s", "inference clips/s (log)"),
    ):
        figure, axes = plt.subplots(figsize=(6, 4))
        for entry in points:
            config = entry["config"]
            axes.scatter(entry[field], entry["top1"])
            axes.annotate(
                f"{config.arch} {config.modality} {config.dataset}",
                (entry[field], entry["top1"]),
                fontsize=7,
            )
        axes.set_xscale("log")
        axes.set_xlabel(label)
        axes.set_ylabel("video top-1 (%)")
        axes.grid(alpha=0.3)
        buffer = io.BytesIO()
        figure.tight_layout()
        figure.savefig(buffer, format="png", dpi=110)
        plt.close(figure)
        images.append(base64.b64encode(buffer.getvalue()).decode())
    return images


def html_page(records: list[RunRecord], title: str) -> str:
    escape = html.escape
    parts = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>{escape(title)}</title>",
        "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:4px 8px;font-size:13px}</style></head><body>",
        f"<h1>{escape(title)}</h1>",
    ]
    for name, (header, rows) in tables(summarise(records)).items():
        parts.append(f"<h2>Protocol: {escape(name)} (video-level top-1 %)</h2><table>")
        parts.append("<tr>" + "".join(f"<th>{escape(h)}</th>" for h in header) + "</tr>")
        for row in rows:
            parts.append("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in row) + "</tr>")
        parts.append("</table>")
    parts.append("<h2>Accuracy against cost</h2>")
    parts.extend(
        f"<img alt='plot' src='data:image/png;base64,{image}'>" for image in plots(records)
    )
    parts.append("<h2>Result cards</h2>")
    for card in result_cards(records):
        parts.append(f"<h3>{escape(card['cell'])}</h3><table>")
        parts.extend(
            f"<tr><th>{escape(k)}</th><td>{escape(str(v))}</td></tr>"
            for k, v in card.items()
            if k != "cell"
        )
        parts.append("</table>")
    parts.append("</body></html>")
    return "\n".join(parts)


def write_leaderboard(records: list[RunRecord], out: Path, title: str) -> dict[str, Path]:
    """`leaderboard.md` (with result cards) and a self-contained `leaderboard.html` in `out`."""
    out.mkdir(parents=True, exist_ok=True)
    text = markdown(records) + "\n### Result cards\n"
    for card in result_cards(records):
        text += f"\n**{card['cell']}**: " + "; ".join(
            f"{k} {v}" for k, v in card.items() if k != "cell"
        )
        text += "\n"
    paths = {"markdown": out / "leaderboard.md", "html": out / "leaderboard.html"}
    atomic_write_text(paths["markdown"], f"# {title}\n\n{text}")
    atomic_write_text(paths["html"], html_page(records, title))
    return paths
