"""The leaderboard a user publishes: one number per column, where the numbers come from,
plots with a legend, error bars and chance, and a page that reads on a desktop and a phone
in a real browser (headless Chromium) without loading anything from elsewhere."""

from __future__ import annotations

import base64
import os
import re
from pathlib import Path

import pytest
from browser import find_chromium, render
from helpers import finished_record, markdown_rows, paper_record

from vidbench.bench.leaderboard import markdown, summarise
from vidbench.bench.leaderboard_page import html_page, plots, write_leaderboard
from vidbench.bench.results import RunRecord, read_records

TRANSFER = Path(__file__).resolve().parents[1] / "results" / "transfer"


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
    c3d = by_cell["3D-ConvNet", "syn", "1"]
    assert (c3d["Top-1 %"], c3d["± s.d."], c3d["Seeds"], c3d["Top-5 %"]) == (
        "50.0", "14.1", "2", "100.0",
    )  # fmt: skip
    assert (c3d["Chance %"], c3d["Params (M)"], c3d["GMACs/clip"]) == ("12.5", "0.00", "1.00")
    assert c3d["Paper top-1 %"] == c3d["Δ paper"] == ""  # synthetic data: no paper number
    kinetics = by_cell["Two-Stream I3D", "kinetics400", "test"]  # the split it was tested on
    assert (kinetics["Top-1 %"], kinetics["Seeds"], kinetics["Failed"]) == ("60.0", "1", "1")
    assert (kinetics["Paper top-1 %"], kinetics["Δ paper"], kinetics["Table"]) == (
        "68.4", "-8.4", "3",
    )  # fmt: skip
    mean = by_cell["Two-Stream I3D", "ucf101", "mean of 3"]
    assert (mean["Top-1 %"], mean["Paper top-1 %"], mean["Δ paper"]) == ("98.0", "97.8", "+0.2")
    for row in rows:  # numbers only, where there is one
        for column in ("Top-1 %", "Top-5 %", "Chance %", "Infer clips/s", "Paper top-1 %"):
            assert row[column] == "" or re.fullmatch(r"-?\d+\.\d", row[column]), (column, row)


def test_a_suite_of_datasets_reads_as_architectures_by_datasets():
    """The diagnostic sweep's leaderboard: one row per architecture and modality, one column
    per task with its chance, mean ± s.d. over seeds; a cell not run is empty."""
    records = [
        finished_record(f"{arch}-{modality}-{task}1-scratch-s{seed}", top1)
        for arch, modality, task, seed, top1 in [
            ("c3d", "rgb", "order", 0, 40.0), ("c3d", "rgb", "order", 1, 60.0),
            ("c3d", "rgb", "speed", 0, 90.0), ("c3d", "rgb", "speed", 1, 90.0),
            ("i3d", "flow", "order", 0, 100.0), ("frame_avg", "rgb", "speed", 0, 30.0),
        ]
    ]  # fmt: skip
    text = markdown(records)
    assert "### Top-1 % by dataset: scratch, from scratch, split 1" in text
    matrix = [r for r in markdown_rows(text) if "Modality" in r and "Top-1 %" not in r]
    assert matrix == [
        {"Architecture": "3D-ConvNet", "Modality": "RGB", "order (chance 12.5)": "50.0 ± 14.1",
         "speed (chance 12.5)": "90.0"},
        {"Architecture": "Two-Stream I3D", "Modality": "Flow", "order (chance 12.5)": "100.0",
         "speed (chance 12.5)": ""},
        {"Architecture": "Frame average (no motion)", "Modality": "RGB",
         "order (chance 12.5)": "", "speed (chance 12.5)": "30.0"},
    ]  # fmt: skip
    one_dataset = markdown([r for r in records if "order" in r.cell])
    assert "by dataset" not in one_dataset  # one dataset: the main table says it all
    page = html_page(records, "t")  # the page has the same table
    assert "<h2>Top-1 % by dataset: scratch, from scratch, split 1 (mean ± s.d. over seeds)" in page
    assert (
        "<tr><td>3D-ConvNet</td><td>RGB</td><td class=num>50.0 ± 14.1</td>"
        "<td class=num>90.0</td></tr>" in page
    )


def test_the_page_says_where_its_numbers_come_from_and_plots_them_with_legend_and_chance():
    records = mixed_records()
    page = html_page(records, "t", command="vidbench leaderboard out")
    assert "<meta name='viewport' content='width=device-width, initial-scale=1'>" in page
    for text in (
        "vidbench run mixed",
        "code (commit)",
        "2026-01-01",
        "by vidbench leaderboard out",
    ):
        assert text in page
    assert "[3, 8, 32, 32]" not in page and "rgb 3×8×32×32" in page  # no raw Python lists
    assert not re.search(r"""(src|href)=['"]?(https?:)?//""", page)  # nothing from elsewhere
    svgs = plots(summarise(records))
    assert len(svgs) == 2 and page.count("data:image/svg+xml;base64,") == 2
    for svg, _ in svgs:
        # matplotlib writes each text it draws as paths, after a comment holding the text
        labels = (
            "3D-ConvNet · RGB · scratch · syn · split 1",
            *(f"Two-Stream I3D · RGB+Flow · finetune · ucf101 · split {s}" for s in (1, 2, 3)),
        )
        for text in ("chance (8 classes)", *labels):
            assert f"<!-- {text} -->" in svg, text
        assert "log scale" in svg
    assert plots(summarise(records)) == svgs  # the same records give the same files
    embedded = page.split("data:image/svg+xml;base64,")[1].split("'")[0]
    assert base64.b64decode(embedded).decode() == svgs[0][0]


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
        assert len(result["images"]) == 2 and all(i["loaded"] for i in result["images"])
        # the plots scale with the page: as wide as the phone allows, not wider
        assert all(0 < i["width"] <= result["width"] for i in result["images"])
        assert (tmp_path / f"leaderboard-{width}.png").stat().st_size > 10_000


def no_browser() -> None:
    message = (
        "no Chromium found: install Debian's chromium (apt-get install chromium; .ci/run "
        "does) or set VIDBENCH_CHROMIUM to a Chromium executable"
    )
    if os.environ.get("VIDBENCH_REQUIRE_BROWSER"):  # CI: a missing browser is a failure
        pytest.fail(message)
    pytest.skip(message)
