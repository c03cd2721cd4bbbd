"""A cell's per-video test predictions, kept beside its record: `predictions/<cell>.csv`.

One row per evaluated video: `video_id`, `label` (class index), then the `k` best classes
and their probabilities (the views' softmax averaged, as the video accuracy counts them):
`pred1..predk`, `prob1..probk`. Plain CSV: any tool reads it (`pandas.read_csv`, a
spreadsheet, `grep`), git diffs it, and a Kinetics test split of 40,000 videos takes
about 3 MB (a gzipped file, `.csv.gz`, reads too).
With `eval.keep_probs`, every class's probability too (`<cell>.probs.npy`, float16, rows in
the CSV's order; numpy's format, which other languages read as well). The record holds
the files' paths relative to the results folder and their SHA-256, so a
prediction file that does not belong to the record (another run's, an edited one) is
refused instead of compared.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from vidbench.datasets.files import atomic_write

PREDICTIONS_DIR = "predictions"
TOP_K = 5


@dataclass(frozen=True)
class VideoPredictions:
    """video_ids (V,), labels (V,) int, top classes (V, k) int, their probabilities (V, k)."""

    video_ids: list[str]
    labels: np.ndarray
    classes: np.ndarray
    probs: np.ndarray

    @property
    def correct(self) -> np.ndarray:
        """(V,) bool: the top class is the label."""
        return self.classes[:, 0] == self.labels

    def by_video(self) -> dict[str, int]:
        return {video: i for i, video in enumerate(self.video_ids)}


def top_k(video_ids: list[str], labels: Any, probs: Any, k: int = TOP_K) -> VideoPredictions:
    """From per-video class probabilities (V, C) (tensors or arrays): the `k` best, sorted."""
    probs = np.asarray(probs, dtype=np.float64)
    k = min(k, probs.shape[1])
    classes = np.argsort(-probs, axis=1, kind="stable")[:, :k]
    return VideoPredictions(
        list(video_ids),
        np.asarray(labels, dtype=np.int64),
        classes,
        np.take_along_axis(probs, classes, axis=1),
    )


def write_predictions(
    folder: Path, cell: str, predictions: VideoPredictions, probs: Any = None
) -> dict[str, Any]:
    """Write `folder/predictions/<cell>.csv` (atomically; the same predictions give the
    same bytes) and return what the record keeps of it: {file, sha256, videos}. With
    `probs` (V, C), every class's probability too, as `<cell>.probs.npy` (float16, rows in
    the CSV's order): {probs_file, probs_sha256} as well."""
    k = predictions.classes.shape[1]
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(
        [
            "video_id",
            "label",
            *(f"pred{i}" for i in range(1, k + 1)),
            *(f"prob{i}" for i in range(1, k + 1)),
        ]
    )
    order = sorted(range(len(predictions.video_ids)), key=predictions.video_ids.__getitem__)
    for i in order:
        writer.writerow(
            [
                predictions.video_ids[i],
                int(predictions.labels[i]),
                *(int(c) for c in predictions.classes[i]),
                *(f"{p:.5g}" for p in predictions.probs[i]),
            ]
        )
    data = text.getvalue().encode()
    relative = f"{PREDICTIONS_DIR}/{cell}.csv"
    atomic_write(folder / relative, lambda handle: handle.write(data))
    kept = {
        "file": relative,
        "sha256": hashlib.sha256(data).hexdigest(),
        "videos": len(predictions.video_ids),
    }
    if probs is not None:
        buffer = io.BytesIO()
        np.save(buffer, np.asarray(probs, dtype=np.float16)[order], allow_pickle=False)
        full = buffer.getvalue()
        kept["probs_file"] = f"{PREDICTIONS_DIR}/{cell}.probs.npy"
        kept["probs_sha256"] = hashlib.sha256(full).hexdigest()
        atomic_write(folder / kept["probs_file"], lambda handle: handle.write(full))
    return kept


def read_predictions(folder: Path, kept: dict[str, Any]) -> VideoPredictions:
    """The predictions a record kept (`kept` = its `predictions`), from results `folder`;
    ValueError naming the file when it is missing, altered or malformed."""
    path = folder / kept["file"]
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ValueError(f"{path}: the record's predictions are not there") from None
    if hashlib.sha256(data).hexdigest() != kept.get("sha256"):
        raise ValueError(f"{path}: not the predictions its record wrote (SHA-256 differs)")
    if data[:2] == b"\x1f\x8b":  # gzip
        data = gzip.decompress(data)
    rows = list(csv.reader(io.StringIO(data.decode())))
    header, body = rows[0], rows[1:]
    k = sum(1 for name in header if name.startswith("pred"))
    if header[:2] != ["video_id", "label"] or len(header) != 2 + 2 * k or not body:
        raise ValueError(f"{path}: not a predictions file (header {header[:4]}...)")
    return VideoPredictions(
        [r[0] for r in body],
        np.array([int(r[1]) for r in body]),
        np.array([[int(c) for c in r[2 : 2 + k]] for r in body]).reshape(len(body), k),
        np.array([[float(p) for p in r[2 + k :]] for r in body]).reshape(len(body), k),
    )
