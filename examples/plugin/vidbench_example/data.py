"""The `csvlist` dataset format: one CSV file with a header `video,label,split`.

    video,label,split
    clips/cat_001.mp4,cat,train
    clips/dog_007.mp4,dog,val

`video` is relative to the video root, `label` a class name (classes are numbered in
sorted order), `split` one of train, val, test (a test row may leave `label` empty).
"""

from __future__ import annotations

import csv
from pathlib import Path

from vidbench.datasets.annotations import (
    SPLITS,
    UNLABELLED,
    AnnotationError,
    Annotations,
    VideoRecord,
    safe_relative_path,
)


def parse_csv_list(path: Path, fold: int = 1) -> Annotations:
    """`path` (the CSV file) -> Annotations; AnnotationError naming the line at fault."""
    if fold != 1:
        raise ValueError(f"csvlist has one fold; got fold={fold!r}")
    with open(path, newline="", encoding="utf-8") as file:
        rows = list(csv.DictReader(file))
    if not rows or not {"video", "label", "split"} <= set(rows[0]):
        raise AnnotationError(f"{path}: expected a header video,label,split")
    classes = sorted({row["label"] for row in rows if row["label"]})
    index = {name: i for i, name in enumerate(classes)}
    parsed = Annotations(class_names=classes, splits={split: [] for split in SPLITS})
    for line, row in enumerate(rows, start=2):
        where = f"{path}:{line}"
        if row["split"] not in SPLITS:
            raise AnnotationError(f"{where}: split {row['split']!r} is not one of {SPLITS}")
        video = safe_relative_path(row["video"], where)
        label = index[row["label"]] if row["label"] else UNLABELLED
        parsed.splits[row["split"]].append(VideoRecord(video, label, Path(video).stem))
    return parsed


# whether training clips may be mirrored unless a sweep says (False where classes name
# directions, as Something-Something's do); vidbench reads it, and assumes True without it
parse_csv_list.flip = True
