"""The paper's reported top-1 (%), Table 2 (SPEC 3), to print beside ours.

Protocol: trained and tested on split 1 of UCF-101 and HMDB-51, and on Kinetics-400;
every model but the 3D-ConvNet starts from ImageNet weights. A number is cited only for
the real dataset, recognised by its class list (`official_dataset`), not for any data in
the same file format.
"""

from __future__ import annotations

import re
from functools import cache
from importlib import resources

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

_COLUMNS = [
    (d, m) for d in ("ucf101", "hmdb51", "kinetics400") for m in ("rgb", "flow", "rgb+flow")
]
_ROWS = {
    "convnet_lstm": [81.0, None, None, 36.0, None, None, 63.3, None, None],
    "c3d": [51.6, None, None, 24.3, None, None, 56.1, None, None],
    "two_stream": [83.6, 85.6, 91.2, 43.2, 56.3, 58.3, 62.2, 52.4, 65.6],
    "fused_two_stream": [83.2, 85.8, 89.3, 49.2, 55.5, 56.8, None, None, 67.2],
    "i3d": [84.5, 90.6, 93.4, 49.8, 61.9, 66.4, 71.1, 63.4, 74.2],
}
TABLE2: dict[tuple[str, str, str], float] = {
    (arch, dataset, modality): value
    for arch, values in _ROWS.items()
    for (dataset, modality), value in zip(_COLUMNS, values, strict=True)
    if value is not None
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


def paper_top1(
    arch: str, dataset: str | None, fold: int, protocol: str, modality: str
) -> float | None:
    """Table 2's number for a cell run on the real `dataset` (as `official_dataset` names
    it; None for other data) under the same protocol, else None."""
    if dataset is None or protocol != "scratch" or (dataset in ("ucf101", "hmdb51") and fold != 1):
        return None
    return TABLE2.get((arch, dataset, modality))
