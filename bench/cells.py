"""A sweep's cells: the matrix it expands to (`CellKey`), and each cell resolved (`Cell`).

    for key in expand_cells(sweep):            # i3d-rgb-ucf1011-scratch-s0, ...
        cell = resolve_cell(sweep, key, data)  # + data, model options, ClipSpec, training

A `Cell` is everything that decides a result; its hash says whether two results are
comparable and whether a finished cell must run again. Records carry it as `config`.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, model_validator

from vidbench.bench.config import (
    Strict,
    SweepConfig,
    TrainConfig,
    cell_modalities,
    cell_model_options,
    cell_spec,
    cell_train,
)
from vidbench.datasets.annotations import flips_by_default
from vidbench.datasets.clip_spec import ClipSpec
from vidbench.models.registry import streams_trained_apart

FINAL_CHECKPOINT = "final.ckpt"  # what a finished cell leaves in `cells/<id>/`
# Settings that change what a cell costs but not what it computes (tested): left out of
# its hash, so changing them does not make finished cells run again.
RESULT_NEUTRAL = {"train": {"decode_cache_mb"}, "keep_probs": True}
# Settings added after results were recorded, whose default computes what those results
# computed: hashed only when set to something else, so the older records keep their hash.
HASHED_WHEN_SET = {
    "train": {
        "warmup_steps": 0,
        "val_holdout": 0.1,
        "lr_grid": None,
        "lr_search_steps": 500,
        "compile": False,
    },
    "data": {"test_split": None, "min_coverage": 0.95},
    None: {"max_videos": None},  # fields of the cell itself
}


class CellKey(BaseModel):
    """One cell of a sweep's matrix: dataset and fold x architecture x modality x protocol
    x seed (`*` for all seeds). `fuses` names the streams whose logits it averages instead
    of training (I3D's rgb+flow)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    dataset: str
    fold: int
    arch: str
    modality: str
    protocol: str
    seed: int | Literal["*"]
    fuses: list[str] | None = None

    @property
    def id(self) -> str:
        """`i3d-rgb-ucf1011-scratch-s0`: the cell's folder and its name in results (a
        `module:callable` architecture as `module.callable`, a name every file system takes)."""
        arch = self.arch.replace(":", ".")
        return f"{arch}-{self.modality}-{self.dataset}{self.fold}-{self.protocol}-s{self.seed}"

    def with_(self, **changes: Any) -> CellKey:
        return CellKey(**{**self.key_fields(), **changes})

    def key_fields(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in CellKey.model_fields}


class DataSource(Strict):
    """Where a cell's dataset lives, resolved (synthetic data made and cached on first
    use), and the size of that copy."""

    format: str
    videos: str
    annotations: str
    flow: str | None
    fold: int | None  # the cell's fold (None until a cell takes the dataset)
    copy_files: int
    copy_bytes: int
    synthetic: bool = False
    test_split: Literal["test", "val"] | None = None  # None: test, or val if test is unlabelled
    min_coverage: float = 0.95  # of the test split's listed videos (`bench.preflight`)


class Cell(CellKey):
    """A resolved cell: everything that decides its result, hashed into `config_hash`
    (what makes two results comparable, and a finished cell skipped on a re-run). Records
    carry it as their `config`."""

    sweep: str
    data: DataSource
    model_options: dict[str, Any]
    input: ClipSpec
    flip: bool
    train: TrainConfig
    throughput_batches: int  # timed blocks of batches per cost figure (`measure_costs`)
    max_videos: int | None = None  # evaluated videos per split at most (eval.max_videos)
    keep_probs: bool = False  # keep the full probabilities too (eval.keep_probs)

    @model_validator(mode="before")
    @classmethod
    def from_older_records(cls, values: Any) -> Any:
        """Records written before ClipSpec kept `flip` in `input` and the test views in
        `eval`; they read as today's cells."""
        if not isinstance(values, dict) or "eval" not in values:
            return values
        old_eval = values["eval"] if isinstance(values["eval"], dict) else {}
        values = {k: v for k, v in values.items() if k not in ("cell", "eval")}
        spec = dict(values.get("input") or {})
        values["flip"] = spec.pop("flip", True)
        spec.setdefault("modalities", str(values.get("modality", "rgb")).split("+"))
        spec.setdefault("test_clips", old_eval.get("clips", 1))
        spec.setdefault("test_crops", old_eval.get("crops", 1))
        spec.setdefault("full_video_test", old_eval.get("full_video", False))
        values["input"] = spec
        values["throughput_batches"] = old_eval.get("throughput_batches", 5)
        return values

    def hash(self) -> str:
        return config_hash(self._hashed())

    def setup_hash(self) -> str:
        """What two cells share when they are seeds of one configuration, wherever they ran:
        the hash of everything but the seed, the fold (splits of one configuration are
        its rows, and their mean another), the sweep's name and where the data lies (its
        size and file count stay in). The leaderboard averages seeds only within one."""
        resolved = self._hashed()
        for name in ("seed", "sweep", "fold"):
            resolved.pop(name, None)
        for name in ("videos", "annotations", "flow", "fold"):
            resolved["data"].pop(name, None)
        return config_hash(resolved)

    def _hashed(self) -> dict[str, Any]:
        resolved = self.model_dump(mode="json", exclude=RESULT_NEUTRAL)
        for section, defaults in HASHED_WHEN_SET.items():
            fields = resolved if section is None else resolved[section]
            for name, default in defaults.items():
                if fields.get(name) == default:
                    del fields[name]
        return resolved


def expand_cells(sweep: SweepConfig) -> list[CellKey]:
    """Every cell of the sweep, in run order: I3D's fused rgb+flow cell after its streams."""
    cells = []
    for (name, dataset), arch, protocol, seed in itertools.product(
        sweep.datasets.items(), sweep.arch, sweep.protocol, sweep.seed
    ):
        for fold in dataset.folds:
            modalities = cell_modalities(sweep, arch)
            for modality in sorted(modalities, key=lambda m: m == "rgb+flow"):
                fuses = fused_streams(arch, modality)
                cells.append(
                    CellKey(
                        dataset=name,
                        fold=fold,
                        arch=arch,
                        modality=modality,
                        protocol=protocol,
                        seed=seed,
                        fuses=fuses,
                    )
                )
    return cells


def resolve_cell(sweep: SweepConfig, key: CellKey, data: DataSource) -> Cell:
    """`key` with everything that decides its result: the data, the model's options, what
    it is fed (its ClipSpec), training."""
    return Cell(
        **key.key_fields(),
        sweep=sweep.name,
        data=data.model_copy(update={"fold": key.fold}),
        model_options=cell_model_options(sweep, key.arch, key.modality),
        input=cell_spec(sweep, key.arch, key.modality),
        # mirrored at random unless the sweep says, or the format's classes name directions
        flip=sweep.input.get("flip", flips_by_default(data.format)),
        train=cell_train(sweep, key.arch, key.modality),
        throughput_batches=sweep.eval.throughput_batches,
        max_videos=sweep.eval.max_videos,
        keep_probs=sweep.eval.keep_probs,
    )


def fused_streams(arch: str, modality: str) -> list[str] | None:
    """I3D's rgb+flow is not trained: it adds the logits of the rgb and flow cells."""
    return ["rgb", "flow"] if streams_trained_apart(arch) and modality == "rgb+flow" else None


def config_hash(resolved: dict[str, Any]) -> str:
    """A short stable hash of a cell's resolved config (what makes two results comparable)."""
    text = json.dumps(resolved, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]
