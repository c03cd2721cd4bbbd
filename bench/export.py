"""Results in the forms other tools read: a `model-index` YAML (the block Hugging Face model
cards and mmaction2's metafiles carry: task, dataset with its split, metrics) and a
timm-style CSV (a row per configuration; the columns are `CSV_COLUMNS`).

Both take `summary.summarise`'s groups: one entry per configuration, its seeds averaged.
"""

from __future__ import annotations

import csv
import io
from typing import Any

import yaml

from vidbench.bench.summary import MODALITY_NAMES, Group

TASK = {"type": "video-classification", "name": "Action Recognition"}
CSV_COLUMNS = [
    "model",
    "dataset",
    "split",
    "modality",
    "protocol",
    "start",
    "top1",
    "top1_std",
    "top5",
    "seeds",
    "param_count",
    "gmacs",
    "infer_clips_per_sec",
    "train_clips_per_sec",
    "infer_batch_size",
    "device",
    "precision",
    "setup",
    "cell",
    "ran_on",
]


def _rounded(value: float | None, digits: int = 2) -> float | None:
    return None if value is None else round(value, digits)


def model_index(summary: dict[Group, dict[str, Any]]) -> str:
    """`model-index:` YAML: an entry per finished configuration, named by the network as
    built, modality, dataset, split and start; its top-1 (and top-5 where a dataset has
    more than 5 classes) as metrics, and the setup as the entry's metadata."""
    entries = []
    for key, entry in sorted(summary.items(), key=lambda item: tuple(map(str, item[0]))):
        if entry["top1"] is None:
            continue
        record = entry["records"][0]
        metrics = [{"type": "accuracy", "name": "Top-1 Accuracy", "value": _rounded(entry["top1"])}]
        if entry["top5"] is not None:
            metrics.append(
                {
                    "type": "top_5_accuracy",
                    "name": "Top-5 Accuracy",
                    "value": _rounded(entry["top5"]),
                }
            )
        split = record.data.test_split or "test"
        entries.append(
            {
                "name": f"{entry['label']} {MODALITY_NAMES[key.modality]}, {key.dataset} "
                f"split {key.fold}, {key.protocol} from {key.start}",
                "results": [
                    {
                        "task": dict(TASK),
                        "dataset": {
                            "type": key.dataset,
                            "name": key.dataset,
                            "split": split,
                            "config": f"fold {key.fold}",
                        },
                        "metrics": metrics,
                    }
                ],
                "metadata": {
                    "seeds": entry["seeds"],
                    "parameters": entry["params"],
                    "gmacs_per_clip": _rounded(entry["gmacs"], 4),
                    "setup": entry["setup"],
                    "cell": entry["cell"],
                    "ran_on": entry["ran_on"],
                },
            }
        )
    return yaml.safe_dump({"model-index": entries}, sort_keys=False, allow_unicode=True)


def csv_table(summary: dict[Group, dict[str, Any]]) -> str:
    """A row per configuration (failed ones too, with empty numbers), columns `CSV_COLUMNS`:
    accuracies in %, `param_count` in millions, throughput in clips/s."""
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for key, entry in sorted(summary.items(), key=lambda item: tuple(map(str, item[0]))):
        costs = entry["records"][0].costs if entry["records"] else {}
        params = entry["params"]
        writer.writerow(
            [
                entry["label"],
                key.dataset,
                key.fold,
                key.modality,
                key.protocol,
                key.start,
                _rounded(entry["top1"]),
                _rounded(entry["top1_std"]),
                _rounded(entry["top5"]),
                entry["seeds"],
                _rounded(params / 1e6 if params else None, 3),
                _rounded(entry["gmacs"], 4),
                _rounded(entry["infer_clips_per_s"], 3),
                _rounded(entry["train_clips_per_s"], 3),
                costs.get("batch_size"),
                costs.get("device"),
                costs.get("precision"),
                entry["setup"],
                entry["cell"],
                entry["ran_on"],
            ]
        )
    return text.getvalue()
