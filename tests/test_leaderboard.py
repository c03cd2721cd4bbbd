"""The leaderboard a user publishes: one number per column, where the numbers come from,
plots with a legend, error bars and chance, and a page that reads on a desktop and a phone
in a real browser (headless Chromium) without loading anything from elsewhere."""

from __future__ import annotations

import base64
import html
import json
import os
import re
from pathlib import Path

import pytest
from browser import find_chromium, render
from helpers import finished_record, markdown_rows, paper_record

from vidbench.bench.cells import DataSource, expand_cells, resolve_cell
from vidbench.bench.config import TrainConfig, load_sweep
from vidbench.bench.leaderboard import markdown, summarise
from vidbench.bench.leaderboard_page import html_page, write_leaderboard
from vidbench.bench.plots import Plot, plots
from vidbench.bench.results import RunRecord, append_record, read_records

RESULTS = Path(__file__).resolve().parents[1] / "results"
TRANSFER = RESULTS / "transfer"


def mixed_records() -> list[RunRecord]:
    """Two seeds of one cell, a cell with a paper number, a failed seed with a long error
    (a card must wrap it), three splits with their mean."""
    records = [finished_record(f"c3d-rgb-syn1-scratch-s{s}", v) for s, v in ((0, 40), (1, 60))]
    kinetics = ("table2_kinetics", "i3d-rgb-kinetics4001-scratch-s{}", ("seed=[0,1]",))
    records.append(paper_record(kinetics[0], kinetics[1].format(0), kinetics[2], start="scratch"))
    failed = paper_record(kinetics[0], kinetics[1].format(1), kinetics[2], start="scratch")
    error = "RuntimeError: " + "a_path_without_spaces/" * 20 + " is not readable"
    records.append(failed.model_copy(update={"status": "failed", "error": error}))
    records += [
        paper_record("table5", f"i3d-rgb+flow-ucf101{s}-finetune-s0", start="kinetics", top1=v)
        for s, v in ((1, 97.0), (2, 98.0), (3, 99.0))
    ]
    return [r.model_copy(update={"command": "vidbench run mixed"}) for r in records]


def test_each_column_holds_one_number_and_the_paper_only_under_its_conditions():
    rows = [r for r in markdown_rows(markdown(mixed_records())) if "Top-1 %" in r]
    by_cell = {(r["Architecture"], r["Dataset"], r["Split"]): r for r in rows}
    c3d = by_cell["3D-ConvNet (64×224)", "syn", "1"]  # not the paper's 16×112 input
    assert (c3d["Top-1 %"], c3d["± s.d."], c3d["Seeds"], c3d["Per seed"]) == (
        "50.0",
        "14.1",
        "2",
        "40.0 / 60.0",
    )
    assert (c3d["Chance %"], c3d["Top-5 %"], c3d["Top-5 chance %"]) == ("12.5", "100.0", "62.5")
    four = finished_record("c3d-rgb-order1-scratch-s0", 50.0)
    four.data.num_classes = 4  # top-5 of 4 classes is 100 whatever the model does: not shown
    (row,) = [r for r in markdown_rows(markdown([four])) if "Top-1 %" in r]
    assert (row["Chance %"], row["Top-5 %"], row["Top-5 chance %"]) == ("25.0", "", "")
    assert (c3d["Params (M)"], c3d["GMACs/clip"], c3d["Infer clips/s"]) == ("0.00", "1.00", "1")
    assert c3d["Paper top-1 %"] == c3d["Δ paper"] == ""  # synthetic data: no paper number
    kinetics = by_cell["Two-Stream I3D", "kinetics400", "test"]  # the split it was tested on
    assert (kinetics["Top-1 %"], kinetics["Seeds"], kinetics["Failed"]) == ("60.0", "1", "1")
    assert (kinetics["Top-5 %"], kinetics["Top-5 chance %"]) == ("100.0", "1.2")  # 400 classes
    assert (kinetics["Paper top-1 %"], kinetics["Δ paper"], kinetics["Table"]) == (
        "68.4",
        "-8.4",
        "3",
    )
    mean = by_cell["Two-Stream I3D", "ucf101", "mean of 3"]
    assert (mean["Top-1 %"], mean["Paper top-1 %"], mean["Δ paper"]) == ("98.0", "97.8", "+0.2")
    for row in rows:  # numbers only, where there is one
        for column in ("Top-1 %", "Top-5 %", "Chance %", "Paper top-1 %"):
            assert row[column] == "" or re.fullmatch(r"-?\d+\.\d", row[column]), (column, row)


def test_a_row_says_what_was_run_and_where():
    """Width and input of a reduced network in its name; budget, batch, optimiser, rate,
    flow algorithm, sweep and cell, machine and code version in the row."""
    sweep = load_sweep("smoke", ["seed=[0,1]"])
    source = DataSource(
        format="ucf101",
        videos="/v",
        annotations="/a",
        flow="/f",
        fold=None,
        copy_files=1,
        copy_bytes=1,
    )
    records = []
    for seed in (0, 1):
        (key,) = [k for k in expand_cells(sweep) if k.id == f"i3d-flow-synthetic1-scratch-s{seed}"]
        cell = resolve_cell(sweep, key, source)
        record = finished_record(key.id, 90.0 + seed)
        records.append(
            record.model_copy(
                update={
                    "config": cell,
                    "config_hash": cell.hash(),
                    "launcher": {"host": "node7"},
                    "sweep": "smoke",
                    "batch": cell.train.batch_plan(1),
                }
            )
        )
    (row,) = [r for r in markdown_rows(markdown(records)) if "Top-1 %" in r]
    assert row["Architecture"] == "Two-Stream I3D (width 0.25, 8×48)"
    assert row["Setup"].startswith("8×48² (")
    for part in (
        "700 steps",
        "batch 8",
        "AdamW lr 0.001",
        "cosine",
        "warm-up 100",
        "flow farneback",
        "dropout 0",
    ):
        assert part in row["Setup"], (part, row["Setup"])
    assert row["Sweep: cell"] == "smoke: i3d-flow-synthetic1-scratch-s\\*"  # Markdown-escaped
    assert row["Ran on"] == "node7 (cpu); vidbench test"


def test_costs_are_the_mean_over_seeds_and_a_failed_measurement_reads_failed():
    records = [finished_record(f"c3d-rgb-syn1-scratch-s{s}", 50.0) for s in range(3)]
    for record, clips in zip(records, (10.0, 12.0, 14.0), strict=True):
        record.costs.update(infer_clips_per_s=clips, infer_clips_per_s_iqr=0.5)
    (row,) = [r for r in markdown_rows(markdown(records)) if "Top-1 %" in r]
    assert row["Infer clips/s"] == "12 ± 2"  # mean ± s.d. over the three seeds
    # a timer that misread (negative interquartile range) or a figure of zero: failed
    for broken in ({"infer_clips_per_s_iqr": -0.086}, {"infer_clips_per_s": 0.0}):
        records[1].costs.update({"infer_clips_per_s": 12.0, "infer_clips_per_s_iqr": 0.5, **broken})
        (row,) = [r for r in markdown_rows(markdown(records)) if "Top-1 %" in r]
        assert row["Infer clips/s"] == "failed", broken
    slow = finished_record("c3d-rgb-syn1-scratch-s0", 50.0)
    slow.costs.update(infer_clips_per_s=0.0357)
    (row,) = [r for r in markdown_rows(markdown([slow])) if "Top-1 %" in r]
    assert row["Infer clips/s"] == "0.0357"  # never 0.0


def test_two_configurations_of_one_cell_are_two_rows_never_one_mean(tmp_path):
    """Merged from two machines: the same cell with another budget is a row of its own;
    the same cell and configuration in both folders counts once, the later one."""
    from vidbench.bench.cli import main

    short = finished_record("c3d-rgb-syn1-scratch-s0", 40.0)
    long = finished_record("c3d-rgb-syn1-scratch-s0", 80.0)
    long.config = long.config.model_copy(update={"train": TrainConfig(max_steps=5000)})
    long.config_hash = long.config.hash()
    copy = short.model_copy(update={"finished": "2026-01-02T00:00:00+00:00"})
    for folder, record, host in (("a", short, "alpha"), ("b", long, "beta"), ("c", copy, "gamma")):
        record.launcher = {"host": host}
        append_record(tmp_path / folder / "runs.jsonl", record)
    folders = [str(tmp_path / name) for name in "abc"]
    assert main(["leaderboard", *folders, "--out", str(tmp_path / "merged")]) == 0
    rows = [
        r
        for r in markdown_rows((tmp_path / "merged" / "leaderboard.md").read_text())
        if "Top-1 %" in r
    ]
    assert sorted((r["Top-1 %"], r["Seeds"], r["Ran on"]) for r in rows) == [
        ("40.0", "1", "gamma (cpu); vidbench test"),  # the later copy of the short one
        ("80.0", "1", "beta (cpu); vidbench test"),
    ]
    assert {"5000 steps" in r["Setup"] for r in rows} == {True, False}


def test_the_page_holds_the_sweeps_verdicts_and_headings_in_english(tmp_path):
    records = mixed_records()
    verdicts = {"sanity": {"verdict": "PASSED", "report": "c3d beats it", "when": "2026-12-04"}}
    paths = write_leaderboard(records, tmp_path, "t", "vidbench leaderboard x", verdicts)
    page, text = paths["html"].read_text(), paths["markdown"].read_text()
    for document in (page, text):
        assert "Sanity check (motion models beat frame averaging): PASSED" in document
        assert "c3d beats it" in document
        assert "### From scratch\n" in document or "<h2>From scratch</h2>" in document
        assert "Fine-tuned from Kinetics" in document
        assert "Protocol:" not in document
    assert "top1 40.0% (video level)" in text  # each seed's accuracy in its card


def test_a_suite_of_datasets_reads_as_architectures_by_datasets():
    """The diagnostic sweep's leaderboard: one row per architecture and modality, one column
    per task with its chance, mean ± s.d. over seeds; a cell not run is empty."""
    records = [
        finished_record(f"{arch}-{modality}-{task}1-scratch-s{seed}", top1)
        for arch, modality, task, seed, top1 in [
            ("c3d", "rgb", "order", 0, 40.0),
            ("c3d", "rgb", "order", 1, 60.0),
            ("c3d", "rgb", "speed", 0, 90.0),
            ("c3d", "rgb", "speed", 1, 90.0),
            ("i3d", "flow", "order", 0, 100.0),
            ("frame_avg", "rgb", "speed", 0, 30.0),
        ]
    ]
    text = markdown(records)
    assert "### Top-1 % by dataset: From scratch, split 1" in text
    matrix = [r for r in markdown_rows(text) if "Modality" in r and "Top-1 %" not in r]
    assert matrix == [
        {
            "Architecture": "3D-ConvNet (64×224)",
            "Modality": "RGB",
            "order (chance 12.5)": "50.0 ± 14.1",
            "speed (chance 12.5)": "90.0",
        },
        {
            "Architecture": "Two-Stream I3D",
            "Modality": "Flow",
            "order (chance 12.5)": "100.0",
            "speed (chance 12.5)": "",
        },
        {
            "Architecture": "Frame average (no motion) (64×224)",
            "Modality": "RGB",
            "order (chance 12.5)": "",
            "speed (chance 12.5)": "30.0",
        },
    ]
    one_dataset = markdown([r for r in records if "order" in r.cell])
    assert "by dataset" not in one_dataset  # one dataset: the main table says it all
    page = html_page(records, "t")  # the page has the same table
    assert "<h2>Top-1 % by dataset: From scratch, split 1 (mean ± s.d. over seeds)" in page
    assert (
        "<tr><td>3D-ConvNet (64×224)</td><td>RGB</td><td class=num>50.0 ± 14.1</td>"
        "<td class=num>90.0</td></tr>" in page
    )


def test_the_page_says_where_its_numbers_come_from_and_plots_them_per_dataset():
    records = mixed_records()
    page = html_page(records, "t", command="vidbench leaderboard out")
    assert "<meta name='viewport' content='width=device-width, initial-scale=1'>" in page
    for text in (
        "vidbench run mixed (7 cells)",
        "code (commit)",
        "2026-01-01",
        "by vidbench leaderboard out",
    ):
        assert text in page
    assert "[3, 8, 32, 32]" not in page and "rgb 3×8×32×32" in page  # no raw Python lists
    assert not re.search(r"""(src|href)=['"]?(https?:)?//""", page)  # nothing from elsewhere
    drawn = plots(summarise(records))
    # a facet per dataset and split: syn; kinetics400; ucf101 splits 1-3; none on cost (one
    # network per facet, so a cost axis would hold one point)
    assert [p.caption.split(": ")[1] for p in drawn] == [
        "syn, split 1, From scratch",
        "kinetics400, split 1, From scratch",
        *(f"ucf101, split {s}, Fine-tuned from Kinetics" for s in (1, 2, 3)),
    ]
    assert page.count("data:image/svg+xml;base64,") == len(drawn)
    syn = drawn[0].svg  # matplotlib writes each text it draws as paths, after a comment
    assert "<!-- 3D-ConvNet · RGB -->" in syn and "chance 12.5" in syn
    assert plots(summarise(records)) == drawn  # the same records give the same files
    embedded = page.split("data:image/svg+xml;base64,")[1].split("'")[0]
    assert base64.b64decode(embedded).decode() == drawn[0].svg


def test_a_cost_plot_only_where_costs_differ_and_no_series_shares_a_colour_and_marker():
    records = [
        finished_record(f"{arch}-{modality}-syn1-scratch-s0", 50.0)
        for arch in (
            "c3d",
            "i3d",
            "two_stream",
            "fused_two_stream",
            "convnet_lstm",
            "frame_avg",
            "r3d",
        )
        for modality in ("rgb", "flow")
    ]
    for i, record in enumerate(records):
        record.costs["gmacs_per_clip"] = 1.0 + i
    drawn = plots(summarise(records))
    assert [p.caption.split(":")[0] for p in drawn] == [
        "Top-1 per seed",
        "Top-1 against multiply-adds per clip",
    ]
    assert_unique_styles(drawn)


def assert_unique_styles(drawn) -> None:
    """Across a page's plots, one colour-marker pair names one series, and back."""
    pairs: dict[tuple[str, str], set[str]] = {}
    names: dict[str, set[tuple[str, str]]] = {}
    for plot in drawn:
        for series in plot.series:
            pair = (series["colour"], series["marker"])
            pairs.setdefault(pair, set()).add(series["name"])
            names.setdefault(series["name"], set()).add(pair)
    assert all(len(v) == 1 for v in pairs.values()), pairs
    assert all(len(v) == 1 for v in names.values()), names


@pytest.mark.parametrize("folder", ["transfer", "diagnostic"])
def test_each_committed_page_has_distinct_series_and_no_cost_of_zero(folder):
    """The committed leaderboards as they are on disk: every plot's series has a colour and
    marker of its own, and no cost reads 0.0 (a failed measurement reads failed)."""
    page = (RESULTS / folder / "leaderboard.html").read_text()
    figures = re.findall(r"<figure data-series='([^']*)'", page)
    assert figures, "a page made before plots named their series: re-make it (results/README)"
    drawn = [Plot("", "", json.loads(html.unescape(f))) for f in figures]
    assert_unique_styles(drawn)
    rows = markdown_rows((RESULTS / folder / "leaderboard.md").read_text())
    for row in rows:
        for column in ("Train clips/s", "Infer clips/s", "GMACs/clip", "Params (M)"):
            assert not re.fullmatch(r"0(\.0+)?( ±.*)?", row.get(column, "")), (column, row)


def test_the_browser_check_sees_overflow_broken_images_and_outside_requests(tmp_path):
    """The check below can fail: a page with a wide block, a missing image and a request
    to another host is reported on all three counts."""
    if find_chromium() is None:
        no_browser()
    bad = tmp_path / "bad.html"
    bad.write_text(
        "<!doctype html><html><head><meta name='viewport' content='width=device-width'>"
        "</head><body><div style='width:900px'>wide</div><img alt='gone' src='missing.png'>"
        "<img alt='remote' src='https://example.com/x.png'></body></html>"
    )
    phone = render(bad)["phone"]
    assert phone["scrollWidth"] > phone["width"] and phone["outside"]
    assert [i["loaded"] for i in phone["images"]] == [False, False]
    assert any(url.startswith("https://example.com") for url in phone["requests"])


def test_the_leaderboard_reads_in_a_real_browser_at_desktop_and_phone_widths(tmp_path):
    if find_chromium() is None:
        no_browser()
    records = read_records(TRANSFER) + mixed_records()
    paths = write_leaderboard(records, tmp_path, "vidbench leaderboard", "vidbench leaderboard x")
    seen = render(paths["html"], screenshots=tmp_path)
    for width, result in seen.items():
        assert result["scrollWidth"] <= result["width"], (width, result)
        assert result["outside"] == [], (width, result["outside"])
        assert result["requests"] == [], (width, result["requests"])
        assert result["images"] and all(i["loaded"] for i in result["images"])
        # the plots scale with the page: as wide as the phone allows, not wider, and their
        # text stays legible (10 px or more)
        assert all(0 < i["width"] <= result["width"] for i in result["images"])
        assert all(i["fontPx"] >= 10 for i in result["images"]), result["images"]
        # the accuracy is in view without scrolling a table sideways
        assert result["top1"] and all(b["right"] <= result["width"] for b in result["top1"])
        assert (tmp_path / f"leaderboard-{width}.png").stat().st_size > 10_000


def no_browser() -> None:
    message = (
        "no Chromium found: install Debian's chromium (apt-get install chromium; .ci/run "
        "does) or set VIDBENCH_CHROMIUM to a Chromium executable"
    )
    if os.environ.get("VIDBENCH_REQUIRE_BROWSER"):  # CI: a missing browser is a failure
        pytest.fail(message)
    pytest.skip(message)
