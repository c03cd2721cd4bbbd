"""The paper's reported results (docs/protocol.md 3: Tables 2-5), each with the conditions
it holds under.

A number is shown beside one of ours only when every condition matches (docs/protocol.md 3): the
dataset (the real one, recognised by its class list, `official_dataset`, not any data in
the same file format), the split (1, or the mean of the three), the modality, the
protocol, and what the network started from:

- protocol: `scratch` = the paper's "Original" (trained on that dataset only), `fixed` =
  "Fixed" (a Kinetics-trained network frozen, its last layer trained), `finetune` =
  "Full-FT" (a Kinetics-trained network fine-tuned end to end);
- start: `scratch` (random), `imagenet` (the 2D trunk's ImageNet weights), `kinetics` (a
  network trained on Kinetics from scratch) or `imagenet+kinetics`. Any other start (such
  as `kinetics (imagenet unstated)`, DeepMind's TF-Hub I3D, whose source does not say
  whether it began from ImageNet) matches no number.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Literal

STARTS = ("scratch", "imagenet", "kinetics", "imagenet+kinetics")


@dataclass(frozen=True)
class PaperResult:
    """One number of the paper and the conditions it was obtained under."""

    table: str  # "2", "3", "4", "5"
    arch: str
    dataset: str  # ucf101, hmdb51, kinetics400
    split: int | Literal["mean"]  # 1, or the mean over the three splits
    modality: str  # rgb, flow, rgb+flow
    protocol: str  # scratch ("Original"), fixed, finetune ("Full-FT")
    start: str  # one of STARTS
    top1: float
    top5: float | None = None


ARCH_NAMES = {
    "convnet_lstm": "ConvNet+LSTM",
    "c3d": "3D-ConvNet",
    "two_stream": "Two-Stream",
    "fused_two_stream": "3D-Fused",
    "i3d": "Two-Stream I3D",
    "r3d": "3D-ResNet",
    "frame_avg": "Frame average (no motion)",
}
PAPER_ORDER = list(ARCH_NAMES)


def _imagenet(arch: str) -> str:
    """What "every model but the 3D-ConvNet starts from ImageNet weights" means for `arch`."""
    return "scratch" if arch == "c3d" else "imagenet"


def _table2() -> list[PaperResult]:
    """Split 1 of UCF-101 and HMDB-51, and Kinetics; trained on that dataset only."""
    columns = [
        (d, m) for d in ("ucf101", "hmdb51", "kinetics400") for m in ("rgb", "flow", "rgb+flow")
    ]
    rows = {
        "convnet_lstm": [81.0, None, None, 36.0, None, None, 63.3, None, None],
        "c3d": [51.6, None, None, 24.3, None, None, 56.1, None, None],
        "two_stream": [83.6, 85.6, 91.2, 43.2, 56.3, 58.3, 62.2, 52.4, 65.6],
        "fused_two_stream": [83.2, 85.8, 89.3, 49.2, 55.5, 56.8, None, None, 67.2],
        "i3d": [84.5, 90.6, 93.4, 49.8, 61.9, 66.4, 71.1, 63.4, 74.2],
    }
    return [
        PaperResult("2", arch, dataset, 1, modality, "scratch", _imagenet(arch), value)
        for arch, values in rows.items()
        for (dataset, modality), value in zip(columns, values, strict=True)
        if value is not None
    ]


def _table3() -> list[PaperResult]:
    """Kinetics, from scratch and from ImageNet weights (top-5 where the paper gives it);
    the ImageNet half repeats Table 2's Kinetics columns."""
    rows = {  # scratch rgb, flow, both
        "convnet_lstm": [(53.9, None), None, None],
        "c3d": [(56.1, None), None, None],
        "two_stream": [(57.9, None), (49.6, None), (62.8, None)],
        "fused_two_stream": [None, None, (62.7, None)],
        "i3d": [(68.4, 88.0), (61.5, 83.4), (71.6, 90.0)],
    }
    top5 = {("i3d", "rgb"): 89.3, ("i3d", "flow"): 84.9, ("i3d", "rgb+flow"): 91.3}
    results = [
        PaperResult("3", arch, "kinetics400", 1, modality, "scratch", "scratch", *value)
        for arch, values in rows.items()
        for modality, value in zip(("rgb", "flow", "rgb+flow"), values, strict=True)
        if value is not None
    ]
    for r in _table2():
        if r.dataset == "kinetics400" and r.start == "imagenet":
            five = top5.get((r.arch, r.modality))
            results.append(
                PaperResult("3", r.arch, r.dataset, 1, r.modality, "scratch", r.start, r.top1, five)
            )
    return results


def _table4() -> list[PaperResult]:
    """Split 1 of UCF-101 and HMDB-51 under Original / Fixed / Full-FT, with and without
    ImageNet; RGB+Flow for the two-stream architectures, RGB for the others."""
    rows = {  # (with ImageNet, without) for UCF Original, Fixed, Full-FT, then HMDB
        "convnet_lstm": [(81.0, 54.2), (88.1, 82.6), (91.0, 86.8),
                         (36.0, 18.3), (50.8, 47.1), (53.4, 49.7)],
        "c3d": [(None, 51.6), (None, 76.0), (None, 79.9), (None, 24.3), (None, 47.0),
                (None, 49.4)],
        "two_stream": [(91.2, 83.6), (93.9, 93.3), (94.2, 93.8),
                       (58.3, 47.1), (66.6, 65.9), (66.6, 64.3)],
        "fused_two_stream": [(89.3, 69.5), (94.3, 89.8), (94.2, 91.5),
                             (56.8, 37.3), (69.9, 64.6), (71.0, 66.5)],
        "i3d": [(93.4, 88.8), (97.7, 97.4), (98.0, 97.6), (66.4, 62.2), (79.7, 78.6),
                (81.2, 81.3)],
    }  # fmt: skip
    results = []
    for arch, values in rows.items():
        modality = "rgb" if arch in ("convnet_lstm", "c3d") else "rgb+flow"
        cells = [(d, p) for d in ("ucf101", "hmdb51") for p in ("scratch", "fixed", "finetune")]
        for (dataset, protocol), (imagenet, without) in zip(cells, values, strict=True):
            kinetics = protocol != "scratch"
            for value, start in ((imagenet, "imagenet"), (without, "scratch")):
                if kinetics:
                    start = "imagenet+kinetics" if start == "imagenet" else "kinetics"
                if value is not None:
                    results.append(
                        PaperResult("4", arch, dataset, 1, modality, protocol, start, value)
                    )
    return results


def _table5() -> list[PaperResult]:
    """The mean over the three splits, Kinetics-pretrained I3D fine-tuned end to end."""
    rows = {  # (start, modality): (UCF-101, HMDB-51)
        ("imagenet+kinetics", "rgb"): (95.6, 74.8),
        ("imagenet+kinetics", "flow"): (96.7, 77.1),
        ("imagenet+kinetics", "rgb+flow"): (98.0, 80.7),
        ("kinetics", "rgb"): (95.1, 74.3),
        ("kinetics", "flow"): (96.5, 77.3),
        ("kinetics", "rgb+flow"): (97.8, 80.9),
    }
    return [
        PaperResult("5", "i3d", dataset, "mean", modality, "finetune", start, value)
        for (start, modality), values in rows.items()
        for dataset, value in zip(("ucf101", "hmdb51"), values, strict=True)
    ]


PAPER_RESULTS: tuple[PaperResult, ...] = (*_table2(), *_table3(), *_table4(), *_table5())
# Table 2 as (arch, dataset, modality) -> top-1, for a quick look
TABLE2: dict[tuple[str, str, str], float] = {
    (r.arch, r.dataset, r.modality): r.top1 for r in PAPER_RESULTS if r.table == "2"
}


# The class lists of the datasets the paper reports on, as their releases name them.
CLASS_LISTS = {
    "ucf101": ("vidbench.bench", "classes/ucf101.txt"),
    "hmdb51": ("vidbench.bench", "classes/hmdb51.txt"),
    "kinetics400": ("vidbench.models", "labels/kinetics400_classes.txt"),
}


def _normalised(names: list[str]) -> frozenset[str]:
    return frozenset(re.sub(r"[^a-z0-9]", "", name.lower()) for name in names)


@cache
def _official() -> dict[frozenset[str], str]:
    lists = {}
    for dataset, (package, name) in CLASS_LISTS.items():
        text = resources.files(package).joinpath(name).read_text(encoding="utf-8")
        lists[_normalised([line for line in text.splitlines() if line.strip()])] = dataset
    return lists


def official_dataset(class_names: list[str]) -> str | None:
    """Which paper dataset these classes are (`ucf101`, `hmdb51`, `kinetics400`), compared
    ignoring case and punctuation; None for any other class list."""
    return _official().get(_normalised(class_names))


def paper_result(
    arch: str,
    dataset: str | None,
    split: int | Literal["mean"],
    modality: str,
    protocol: str,
    start: str | None,
) -> PaperResult | None:
    """The paper's number obtained under exactly these conditions, or None. `dataset` is
    what `official_dataset` made of the run's classes (None: not a paper dataset); `start`
    what the run's network started from (None: unknown, which matches nothing)."""
    if dataset is None or start is None:
        return None
    wanted = (arch, dataset, split, modality, protocol, start)
    matches = [
        r
        for r in PAPER_RESULTS
        if (r.arch, r.dataset, r.split, r.modality, r.protocol, r.start) == wanted
    ]
    # Tables repeat some numbers (Table 3's ImageNet half is Table 2's Kinetics columns):
    # the one that also gives top-5
    return min(matches, key=lambda r: r.top5 is None, default=None)
