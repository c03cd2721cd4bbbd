"""Leaderboards from run records: a Markdown table per protocol and an HTML page.

One table per protocol and start (what the networks started from: scratch, ImageNet,
Kinetics, ImageNet then Kinetics), so the paper's Tables 2 and 3 (Original, from scratch
or ImageNet), 4 (Original / Fixed / Full-FT, with or without ImageNet) and 5 (3-split
means) each have their counterpart where a sweep fills them. A row is one architecture,
dataset, split and modality; its columns are numbers, one quantity each: video-level
top-1 (%) as the mean over seeds and their standard deviation, top-5, chance, parameters,
multiply-adds, training and inference clips/s, and the paper's number and the difference
only where every condition matches (`paper.paper_result`). Failed cells are counted. The
page (`leaderboard_page`) adds where the numbers come from, plots and result cards.
"""

from __future__ import annotations

import re
import statistics
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from vidbench.bench.paper import PAPER_ORDER, paper_result
from vidbench.bench.results import RunRecord
from vidbench.bench.significance import add_comparisons
from vidbench.bench.summary import MODALITY_NAMES, Group, cited, measured, summarise

SPLIT_FORMATS = ("ucf101", "hmdb51")  # datasets whose folds are official splits
PROTOCOL_ORDER = ["scratch", "fixed", "finetune"]  # the paper's Original, Fixed, Full-FT
START_NAMES = {
    "scratch": "scratch", "imagenet": "ImageNet", "kinetics": "Kinetics",
    "imagenet+kinetics": "ImageNet then Kinetics",
    "kinetics (imagenet unstated)": "Kinetics (ImageNet unstated)",
}  # fmt: skip

NUMERIC_COLUMNS = [
    "protocol", "start", "architecture", "dataset", "split", "modality", "top1", "top1_std",
    "top5", "top5_chance", "seeds", "failed", "chance", "params", "gmacs",
    "train_clips_per_s", "train_clips_per_s_std", "infer_clips_per_s",
    "infer_clips_per_s_std", "paper_top1", "paper_table", "setup", "cell", "ran_on",
]  # fmt: skip


def numeric_rows(summary: dict[Group, dict[str, Any]]) -> list[list[Any]]:
    """One row per summary entry, numbers as numbers (None where absent or failed), in the
    order of `NUMERIC_COLUMNS`: what a W&B Table or a spreadsheet can sort and plot."""
    rows = []
    for key, entry in sorted(summary.items(), key=lambda item: tuple(map(str, item[0]))):
        paper = entry["paper"]
        rows.append([
            key.protocol, key.start, entry["label"], key.dataset, key.fold, key.modality,
            entry["top1"], entry["top1_std"], entry["top5"], entry["top5_chance"],
            entry["seeds"], entry["failed"], entry["chance"], entry["params"], entry["gmacs"],
            entry["train_clips_per_s"], entry["train_clips_per_s_std"],
            entry["infer_clips_per_s"], entry["infer_clips_per_s_std"],
            paper.top1 if paper else None, paper.table if paper else None,
            entry["setup"], entry["cell"], entry["ran_on"],
        ])  # fmt: skip
    return rows


# The accuracy comes right after the name, so a phone shows it without scrolling.
HEADER = [
    "Architecture", "Top-1 %", "± s.d.", "Per seed", "Dataset", "Split", "Modality", "Seeds",
    "Chance %", "Top-5 %", "Top-5 chance %", "Params (M)", "GMACs/clip", "Train clips/s",
    "Infer clips/s", "Paper top-1 %", "Δ paper", "Table", "Setup", "Sweep: cell", "Ran on",
]  # fmt: skip
NUMBER_HEADERS = {
    "Top-1 %", "± s.d.", "Seeds", "Chance %", "Top-5 %", "Top-5 chance %", "Params (M)",
    "GMACs/clip", "Train clips/s", "Infer clips/s", "Paper top-1 %", "Δ paper", "Failed",
}  # fmt: skip
NOT_CITED = "Paper number not cited because"  # a last column, where a row has one
VS_BEST = "Vs the best (95% CI)"  # a column where cells kept their predictions


def number(value: float | None, digits: int = 1, signed: bool = False) -> str:
    if value is None:
        return ""
    return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"


def rate(value: float | None) -> str:
    """A throughput with three significant figures (0.0357 reads 0.0357, never 0.0)."""
    if value is None:
        return ""
    return f"{value:.1f}" if value >= 100 else f"{value:.3g}"


def cost_cell(entry: dict[str, Any], name: str, show: Callable[[float], str] = rate) -> str:
    """`mean ± s.d.` over seeds, each written by `show`; `failed` where a seed's
    measurement failed; "" where none was made."""
    if name in entry.get("failed_costs", ()):
        return "failed"
    value, spread = entry.get(name), entry.get(f"{name}_std")
    if value is None:
        return ""
    return show(value) + (f" ± {show(spread)}" if spread else "")


def table_title(protocol: str, start: str | None) -> str:
    """`From scratch`, `Fine-tuned from Kinetics (ImageNet unstated)`..."""
    source = (
        "an unknown start (a checkpoint that does not say)"
        if start is None
        else (START_NAMES.get(start, start))
    )
    if protocol == "scratch":
        return "From scratch" if start == "scratch" else f"Trained from {source}"
    if protocol == "fixed":
        return f"Classifier trained on fixed features from {source}"
    if protocol == "finetune":
        return f"Fine-tuned from {source}"
    return f"{protocol}, from {source}"


def tables(summary: dict[Group, dict[str, Any]]) -> dict[str, tuple[list[str], list[list[str]]]]:
    """Per protocol and start ("Fine-tuned from Kinetics"): (header, rows) of its table, one
    row per architecture, dataset, split, modality and configuration, and the mean over
    splits where a dataset has several and every split finished. A column "Failed" is
    added when a cell failed (a failed group's numbers are empty), "Vs the best" where
    cells kept their predictions, and why a paper number is not cited where one is not."""
    out = {}
    tables_of = sorted(
        {(k.protocol, k.start) for k in summary},
        key=lambda p: ([*PROTOCOL_ORDER, p[0]].index(p[0]), p[0], str(p[1])),
    )
    for protocol, start in tables_of:
        keys = sorted(
            (k for k in summary if (k.protocol, k.start) == (protocol, start)),
            key=lambda k: (
                ([*PAPER_ORDER, k.arch]).index(k.arch),
                k.dataset,
                list(MODALITY_NAMES).index(k.modality),
                k.setup,
                k.fold,
            ),
        )
        folds = defaultdict(set)
        for k in keys:
            folds[k.dataset].add(k.fold)
        fmt = {k.dataset: summary[k]["config"].data.format for k in keys}
        show_failed = any(summary[k]["failed"] for k in keys)
        show_best = any(summary[k].get("vs_best") for k in keys)
        rows, notes = [], []
        for k in keys:
            entry, splits = summary[k], len(folds[k.dataset])
            split = str(k.fold) if splits > 1 or fmt[k.dataset] in SPLIT_FORMATS else ""
            if fmt[k.dataset].startswith("kinetics"):  # its numbers depend on which split
                split = "/".join(sorted({str(r.data.test_split) for r in entry["records"]}))
            extra = [str(entry["failed"])] * show_failed + [entry.get("vs_best", "")] * show_best
            rows.append(row(k, split, entry, entry["paper"]) + extra)
            notes.append(entry["not_cited"])
            siblings = [g for g in keys if g[:4] + g[5:] == k[:4] + k[5:]]
            if splits > 1 and k == siblings[-1]:
                for mean, note in split_mean(k, [summary[g] for g in siblings], splits):
                    rows.append(mean + [""] * (show_failed + show_best))
                    notes.append(note)
        header = HEADER + ["Failed"] * show_failed + [VS_BEST] * show_best
        if any(notes):  # why a paper number is not beside a row, where one is not
            header.append(NOT_CITED)
            rows = [[*r, note] for r, note in zip(rows, notes, strict=True)]
        out[table_title(protocol, start)] = (header, rows)
    return out


def row(key: Group, split: str, entry: dict[str, Any], paper: Any) -> list[str]:
    top1 = entry["top1"]
    per_seed = " / ".join(number(v) for _, v in entry.get("per_seed", ()))
    return [
        entry.get("label", key.arch), number(top1) if top1 is not None else "failed",
        number(entry.get("top1_std")), per_seed if len(entry.get("per_seed", ())) > 1 else "",
        key.dataset, split, MODALITY_NAMES[key.modality], str(entry["seeds"]),
        number(entry.get("chance")), number(entry.get("top5")), number(entry.get("top5_chance")),
        cost_cell(entry, "params", lambda v: number(v / 1e6, 2)),
        cost_cell(entry, "gmacs", lambda v: number(v, 2)),
        cost_cell(entry, "train_clips_per_s"), cost_cell(entry, "infer_clips_per_s"),
        number(paper.top1) if paper else "",
        number(top1 - paper.top1, signed=True) if paper and top1 is not None else "",
        paper.table if paper else "", entry.get("setup", ""), entry.get("cell", ""),
        entry.get("ran_on", ""),
    ]  # fmt: skip


def split_mean(
    last: Group, entries: list[dict[str, Any]], splits: int
) -> list[tuple[list[str], str]]:
    """The row of the mean over a dataset's splits (the paper's Table 5), when all ran,
    and why the paper's mean is not cited beside it ("" when it is or has none): it is
    cited only when every split's cells meet the conditions."""
    values = [e["top1"] for e in entries if e["top1"] is not None]
    if len(values) != splits:
        return []
    official = entries[0]["official"]
    paper = (  # the paper's means are over the three official splits
        paper_result(last.arch, official, "mean", last.modality, last.protocol, last.start)
        if splits == 3
        else None
    )
    records = [r for e in entries for r in e["records"]]
    verdict = cited(paper, records)
    first = entries[0]
    mean = {
        "top1": statistics.mean(values),
        "seeds": first["seeds"],
        "label": first["label"],
        "setup": first["setup"],
        "chance": first["chance"],
    }
    return [(row(last, f"mean of {splits}", mean, verdict["paper"]), verdict["not_cited"])]


def matrices(summary: dict[Group, dict[str, Any]]) -> dict[str, tuple[list[str], list[list[str]]]]:
    """Per protocol, start and split whose cells span two or more datasets: (header, rows)
    of top-1 as architecture (and modality) x dataset, "mean ± s.d. over seeds", chance in
    the header (a suite of tasks, such as the synthetic diagnostic ones, side by side). Two
    configurations of one cell show both values, ` | ` between them."""
    out = {}
    for protocol, start, fold in sorted({(k.protocol, k.start, k.fold) for k in summary}, key=str):
        keys = [k for k in summary if (k.protocol, k.start, k.fold) == (protocol, start, fold)]
        datasets = sorted(
            {k.dataset for k in keys},
            key=lambda d: min(i for i, k in enumerate(summary) if k.dataset == d),
        )
        if len(datasets) < 2:
            continue
        arms = sorted(
            {(k.arch, k.modality, summary[k]["label"]) for k in keys},
            key=lambda a: (
                [*PAPER_ORDER, a[0]].index(a[0]),
                list(MODALITY_NAMES).index(a[1]),
                a[2],
            ),
        )
        chance = {k.dataset: summary[k]["chance"] for k in keys if summary[k]["chance"]}
        header = ["Architecture", "Modality"] + [
            f"{d} (chance {number(chance.get(d))})" if d in chance else d for d in datasets
        ]
        rows = []
        for arch, modality, label in arms:
            cells = []
            for dataset in datasets:
                found = [
                    summary[k]
                    for k in keys
                    if (k.arch, k.modality, k.dataset) == (arch, modality, dataset)
                    and summary[k]["label"] == label
                ]
                cells.append(" | ".join(mean_and_spread(entry) for entry in found))
            rows.append([label, MODALITY_NAMES[modality], *cells])
        out[f"{table_title(protocol, start)}, split {fold}"] = (header, rows)
    return out


def mean_and_spread(entry: dict[str, Any]) -> str:
    if entry["top1"] is None:
        return "failed"
    spread = entry["top1_std"]
    return number(entry["top1"]) + (f" ± {spread:.1f}" if spread else "")


# Markdown that text from records and commands must not start: tables (|), HTML (<, >),
# code (`), emphasis (*, and _ at a word's edge), links ([, ]), and backslashes themselves.
_MARKUP = re.compile(r"([\\|<>`*\[\]])|(?<!\w)_|_(?!\w)")


def md_escape(text: object) -> str:
    """`text` as literal Markdown: markup characters escaped, line breaks made spaces, so
    an error message or a file name cannot break a table or inject HTML."""
    flat = " ".join(str(text).splitlines())
    return _MARKUP.sub(lambda m: "\\" + m.group(0), flat)


def numeric_columns(header: list[str]) -> list[bool]:
    """Which columns of a table hold numbers (right-aligned): the leaderboard's number
    columns, and a matrix's dataset columns (named with their chance)."""
    return [h in NUMBER_HEADERS or "(chance" in h for h in header]


def markdown_table(header: list[str], rows: list[list[str]]) -> list[str]:
    aligns = ["--:|" if n else "---|" for n in numeric_columns(header)]
    return ["| " + " | ".join(header) + " |", "|" + "".join(aligns)] + [
        "| " + " | ".join(md_escape(cell) for cell in r) + " |" for r in rows
    ]


def compared_summary(records: list[RunRecord]) -> dict[Group, dict[str, Any]]:
    """`summarise(records)` with each entry's `vs_best` where the cells kept predictions:
    what the tables and the page show."""
    summary = summarise(records)
    add_comparisons(summary)
    return summary


def markdown(records: list[RunRecord], summary: dict[Group, dict[str, Any]] | None = None) -> str:
    """The tables and matrices as Markdown, and the footnote; `summary` is
    `compared_summary(records)`, made here when not given."""
    summary = compared_summary(records) if summary is None else summary
    parts = []
    for title, (header, rows) in tables(summary).items():
        parts.append(f"### {title}\n")
        parts.extend(markdown_table(header, rows))
        parts.append("")
    for title, (header, rows) in matrices(summary).items():
        parts.append(f"### Top-1 % by dataset: {title} (mean ± s.d. over seeds)\n")
        parts.extend(markdown_table(header, rows))
        parts.append("")
    parts.append(footnote(records))
    return "\n".join(parts) + "\n"


def footnote(records: list[RunRecord]) -> str:
    """What the tables hold and when a paper number is cited (Markdown and the page)."""
    failed = sum(1 for r in records if r.status != "ok")
    return (
        f"{len(records) - failed} cells finished, {failed} failed. Accuracies are video-level "
        "(the softmax of a video's views averaged), means over seeds; ± s.d. is over seeds; "
        "chance is 100 / classes (top-5 chance 500 / classes, shown with more than 5 "
        "classes only). Costs are means over seeds ± s.d.; a measurement that failed reads "
        "failed. Vs the best: the difference from the best row of the same dataset and "
        "split, with a 95% paired bootstrap interval over the test videos and seeds "
        "(`vidbench compare`), where the cells kept their predictions. A paper number "
        "(Tables 2-5) is shown only where the dataset (the real one, recognised by its "
        "class list), split, modality, protocol and start all match; Δ paper is ours minus "
        "the paper's."
    )


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
            iqr = costs.get("infer_clips_per_s_iqr")
            infer = measured(costs, "infer_clips_per_s")
            card.update(
                top1=f"{record.top1:.1f}% (video level)",
                views=f"{spec.test_clips} clip(s) x {spec.test_crops} crop(s)"
                + (" (whole video)" if spec.full_video_test else ""),
                input=", ".join(
                    f"{k} {'×'.join(map(str, v))}" for k, v in costs["input_shape"].items()
                ),
                videos=f"{data.evaluated_videos} evaluated of {test.get('expected', '?')} "
                f"listed ({test.get('missing', 0)} missing, {test.get('unreadable', 0)} "
                f"unreadable); {(data.train or {}).get('substituted', 0)} substituted "
                "in training",
                dataset_copy=f"{data.copy_files} files, {data.copy_bytes / 2**30:.2f} GiB",
                decoder=str(data.decoder),
                device=f"{costs['device']} ({costs['precision']}, batch {costs['batch_size']}"
                + (f", {costs['cpu_threads']} threads)" if costs.get("cpu_threads") else ")"),
                cost=f"{costs['gmacs_per_clip']:.2f} GMACs/clip, {costs['params']:,} params, "
                + (
                    f"{rate(infer)} clips/s inference" + (f" (IQR {rate(iqr)})" if iqr else "")
                    if infer
                    else "inference throughput: measurement failed"
                ),
                versions=f"torch {costs['torch']}, "
                + (f"cuDNN {costs['cudnn']}, " if costs.get("cudnn") else "")
                + f"vidbench {record.code_version}",
                config_hash=str(record.config_hash),
            )
        cards.append(card)
    return cards
