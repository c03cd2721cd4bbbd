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
from typing import Any, NamedTuple

from vidbench.bench.citation import citation_problems
from vidbench.bench.paper import ARCH_NAMES, PAPER_ORDER, PaperResult, paper_result
from vidbench.bench.results import RunRecord

MODALITY_NAMES = {"rgb": "RGB", "flow": "Flow", "rgb+flow": "RGB+Flow"}
SPLIT_FORMATS = ("ucf101", "hmdb51")  # datasets whose folds are official splits
PROTOCOL_ORDER = ["scratch", "fixed", "finetune"]  # the paper's Original, Fixed, Full-FT


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
    """Per cell-without-seed: top-1/top-5 means and spreads (in %), seeds, failures, chance
    (100 / classes), costs, the paper's result under the same conditions; `config` is the
    first record's `Cell`."""
    groups: dict[Group, list[RunRecord]] = defaultdict(list)
    for record in records:
        if record.config is not None:
            groups[group_of(record)].append(record)
    summary = {}
    for key, runs in groups.items():
        ok = [r for r in runs if r.status == "ok"]
        top1 = [r.top1 for r in ok]
        top5 = [100 * r.metrics.video["top5"] for r in ok]
        costs = ok[0].costs if ok else {}
        official = ok[0].data.official_classes if ok else None
        classes = ok[0].data.num_classes if ok else None
        summary[key] = {
            "config": runs[0].config,
            "records": ok,
            "official": official,
            "seeds": len(ok),
            "failed": len(runs) - len(ok),
            "top1": statistics.mean(top1) if top1 else None,
            "top1_std": statistics.stdev(top1) if len(top1) > 1 else None,
            "top5": statistics.mean(top5) if top5 else None,
            "num_classes": classes,
            "chance": 100 / classes if classes else None,
            "params": costs.get("params"),
            "gmacs": costs.get("gmacs_per_clip"),
            "train_clips_per_s": costs.get("train_clips_per_s"),
            "infer_clips_per_s": costs.get("infer_clips_per_s"),
            "infer_clips_per_s_iqr": costs.get("infer_clips_per_s_iqr"),
        }
        summary[key].update(
            cited(
                paper_result(key.arch, official, key.fold, key.modality, key.protocol, key.start),
                ok,
            )
        )
    return summary


def cited(paper: PaperResult | None, records: list[RunRecord]) -> dict[str, Any]:
    """{"paper": the paper's number when `records` meet every condition of
    `citation.citation_problems` (else None), "not_cited": why they do not ("" when they
    do, or when the paper has no number for them)}."""
    if paper is None or not records:
        return {"paper": None, "not_cited": ""}
    problems = list(dict.fromkeys(p for r in records for p in citation_problems(r, paper)))
    if problems:
        return {
            "paper": None,
            "not_cited": f"Table {paper.table} {number(paper.top1)}: " + "; ".join(problems),
        }
    return {"paper": paper, "not_cited": ""}


NUMERIC_COLUMNS = [
    "protocol", "start", "architecture", "dataset", "split", "modality", "top1", "top1_std",
    "top5", "seeds", "failed", "chance", "params", "gmacs", "train_clips_per_s",
    "infer_clips_per_s", "paper_top1", "paper_table",
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
            entry["failed"], entry["chance"], entry["params"], entry["gmacs"],
            entry["train_clips_per_s"], entry["infer_clips_per_s"],
            paper.top1 if paper else None, paper.table if paper else None,
        ])  # fmt: skip
    return rows


HEADER = [
    "Architecture", "Dataset", "Split", "Modality", "Top-1 %", "± s.d.", "Seeds", "Top-5 %",
    "Chance %", "Params (M)", "GMACs/clip", "Train clips/s", "Infer clips/s", "Paper top-1 %",
    "Δ paper", "Table",
]  # fmt: skip
TEXT_COLUMNS = 4  # the first four are names; the rest are numbers (right-aligned)
NOT_CITED = "Paper number not cited because"  # a last column, where a row has one


def number(value: float | None, digits: int = 1, signed: bool = False) -> str:
    if value is None:
        return ""
    return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"


def table_title(protocol: str, start: str | None) -> str:
    label = "unknown (a checkpoint that does not say)" if start is None else start
    return f"{protocol}, from {label}"


def tables(summary: dict[Group, dict[str, Any]]) -> dict[str, tuple[list[str], list[list[str]]]]:
    """Per protocol and start ("scratch, from imagenet"): (header, rows) of its table, one
    row per architecture, dataset, split and modality, and the mean over splits where a
    dataset has several and every split finished. A column "Failed" is added when a cell
    failed; a failed group's numbers are empty."""
    out = {}
    tables_of = sorted(
        {(k.protocol, k.start) for k in summary},
        key=lambda p: ([*PROTOCOL_ORDER, p[0]].index(p[0]), p[0], str(p[1])),
    )
    for protocol, start in tables_of:
        keys = sorted(
            (k for k in summary if (k.protocol, k.start) == (protocol, start)),
            key=lambda k: (
                ([*PAPER_ORDER, k.arch]).index(k.arch), k.dataset,
                list(MODALITY_NAMES).index(k.modality), k.fold,
            ),
        )  # fmt: skip
        folds = defaultdict(set)
        for k in keys:
            folds[k.dataset].add(k.fold)
        fmt = {k.dataset: summary[k]["config"].data.format for k in keys}
        show_failed = any(summary[k]["failed"] for k in keys)
        rows, notes = [], []
        for k in keys:
            entry, splits = summary[k], len(folds[k.dataset])
            split = str(k.fold) if splits > 1 or fmt[k.dataset] in SPLIT_FORMATS else ""
            if fmt[k.dataset].startswith("kinetics"):  # its numbers depend on which split
                split = "/".join(sorted({str(r.data.test_split) for r in entry["records"]}))
            rows.append(row(k, split, entry, entry["paper"]) + [str(entry["failed"])] * show_failed)
            notes.append(entry["not_cited"])
            siblings = [g for g in keys if g[:4] + g[5:] == k[:4] + k[5:]]
            if splits > 1 and k == siblings[-1]:
                for mean, note in split_mean(k, [summary[g] for g in siblings], splits):
                    rows.append(mean + [""] * show_failed)
                    notes.append(note)
        header = HEADER + ["Failed"] * show_failed
        if any(notes):  # why a paper number is not beside a row, where one is not
            header.append(NOT_CITED)
            rows = [[*r, note] for r, note in zip(rows, notes, strict=True)]
        out[table_title(protocol, start)] = (header, rows)
    return out


def row(key: Group, split: str, entry: dict[str, Any], paper: Any) -> list[str]:
    top1 = entry["top1"]
    params = entry.get("params")
    return [
        ARCH_NAMES.get(key.arch, key.arch), key.dataset, split, MODALITY_NAMES[key.modality],
        number(top1) if top1 is not None else "failed", number(entry.get("top1_std")),
        str(entry["seeds"]), number(entry.get("top5")), number(entry.get("chance")),
        number(params / 1e6, 2) if params else "", number(entry.get("gmacs"), 2),
        number(entry.get("train_clips_per_s")), number(entry.get("infer_clips_per_s")),
        number(paper.top1) if paper else "",
        number(top1 - paper.top1, signed=True) if paper and top1 is not None else "",
        paper.table if paper else "",
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
    mean = {"top1": statistics.mean(values), "seeds": entries[0]["seeds"]}
    return [(row(last, f"mean of {splits}", mean, verdict["paper"]), verdict["not_cited"])]


def matrices(summary: dict[Group, dict[str, Any]]) -> dict[str, tuple[list[str], list[list[str]]]]:
    """Per protocol, start and split whose cells span two or more datasets: (header, rows)
    of top-1 as architecture (and modality) x dataset, "mean ± s.d. over seeds", chance in
    the header (a suite of tasks, such as the synthetic diagnostic ones, side by side)."""
    out = {}
    for protocol, start, fold in sorted({(k.protocol, k.start, k.fold) for k in summary}, key=str):
        keys = [k for k in summary if (k.protocol, k.start, k.fold) == (protocol, start, fold)]
        datasets = sorted({k.dataset for k in keys}, key=lambda d: min(
            i for i, k in enumerate(summary) if k.dataset == d))  # fmt: skip
        if len(datasets) < 2:
            continue
        arms = sorted(
            {(k.arch, k.modality) for k in keys},
            key=lambda a: ([*PAPER_ORDER, a[0]].index(a[0]), list(MODALITY_NAMES).index(a[1])),
        )
        chance = {k.dataset: summary[k]["chance"] for k in keys if summary[k]["chance"]}
        header = ["Architecture", "Modality"] + [
            f"{d} (chance {number(chance.get(d))})" if d in chance else d for d in datasets
        ]
        rows = []
        for arch, modality in arms:
            cells = []
            for dataset in datasets:
                entry = summary.get(Group(protocol, start, arch, dataset, fold, modality))
                if entry is None:
                    cells.append("")
                elif entry["top1"] is None:
                    cells.append("failed")
                else:
                    spread = entry["top1_std"]
                    cells.append(number(entry["top1"]) + (f" ± {spread:.1f}" if spread else ""))
            rows.append([ARCH_NAMES.get(arch, arch), MODALITY_NAMES[modality], *cells])
        out[f"{table_title(protocol, start)}, split {fold}"] = (header, rows)
    return out


# Markdown that text from records and commands must not start: tables (|), HTML (<, >),
# code (`), emphasis (*, and _ at a word's edge), links ([, ]), and backslashes themselves.
_MARKUP = re.compile(r"([\\|<>`*\[\]])|(?<!\w)_|_(?!\w)")


def md_escape(text: object) -> str:
    """`text` as literal Markdown: markup characters escaped, line breaks made spaces, so
    an error message or a file name cannot break a table or inject HTML."""
    flat = " ".join(str(text).splitlines())
    return _MARKUP.sub(lambda m: "\\" + m.group(0), flat)


def markdown_table(header: list[str], rows: list[list[str]], text_columns: int) -> list[str]:
    aligns = ["---|" if i < text_columns else "--:|" for i in range(len(header))]
    return ["| " + " | ".join(header) + " |", "|" + "".join(aligns)] + [
        "| " + " | ".join(md_escape(cell) for cell in r) + " |" for r in rows
    ]


def markdown(records: list[RunRecord]) -> str:
    summary = summarise(records)
    parts = []
    for title, (header, rows) in tables(summary).items():
        parts.append(f"### Protocol: {title} {TABLE_SUFFIX}\n")
        parts.extend(markdown_table(header, rows, TEXT_COLUMNS))
        parts.append("")
    for title, (header, rows) in matrices(summary).items():
        parts.append(f"### Top-1 % by dataset: {title} (mean ± s.d. over seeds)\n")
        parts.extend(markdown_table(header, rows, 2))
        parts.append("")
    parts.append(footnote(records))
    return "\n".join(parts) + "\n"


TABLE_SUFFIX = "(video-level accuracy, mean over seeds)"


def footnote(records: list[RunRecord]) -> str:
    """What the tables hold and when a paper number is cited (Markdown and the page)."""
    failed = sum(1 for r in records if r.status != "ok")
    return (
        f"{len(records) - failed} cells finished, {failed} failed. ± s.d. is over seeds; "
        "chance is 100 / classes. A paper number (Tables 2-5) is shown only where the "
        "dataset (the real one, recognised by its class list), split, modality, protocol "
        "and start all match; Δ paper is ours minus the paper's."
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
            card.update(
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
                f"{costs['infer_clips_per_s']:.1f} clips/s inference"
                + (f" (IQR {iqr:.1f})" if iqr is not None else ""),
                versions=f"torch {costs['torch']}, "
                + (f"cuDNN {costs['cudnn']}, " if costs.get("cudnn") else "")
                + f"vidbench {record.code_version}",
                config_hash=str(record.config_hash),
            )
        cards.append(card)
    return cards
