"""Sweep files: plain YAML, validated before anything runs, expanded into cells (`cells`).

A sweep names a matrix (architectures x datasets and folds x modalities x protocols x
seeds) plus the training settings and the evaluation protocol shared by its cells:

    name: table2
    arch: [i3d, c3d]
    modality: auto            # or a list: rgb, flow, rgb+flow
    protocol: [scratch]
    seed: [0]
    datasets:
      ucf101: {format: ucf101, videos: /data/UCF-101, annotations: /data/ucfTrainTestlist,
               flow: /data/UCF-101-flow, folds: [1]}
    model: {width: 1.0}       # options for every architecture that takes them
    per_arch: {c3d: {clip_len: 16, crop_size: 112}}   # model options or clip geometry
    input: {clip_len: 64, crop_size: 224}             # absent or null: the architecture's own
    train: {max_steps: 20000, batch_size: 8, lr: 0.1}
    eval: {clips: 1, crops: 1}

`input` overrides fields of each architecture's `ClipSpec` (`vidbench.datasets.clip_spec`)
and sets `flip`; `eval` sets its test views. Command-line overrides use the same keys:
`arch=[i3d,c3d] train.max_steps=200`.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal, get_args

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    ValidationError,
    field_validator,
    model_validator,
)

from vidbench.bench.precheck import (  # noqa: F401  (re-exported for their older importers)
    WEIGHT_FILE_OPTIONS,
    SweepError,
    parse_override,
    read_sweep,
)
from vidbench.datasets.annotations import DATASETS, check_format
from vidbench.datasets.clip_spec import OVERRIDABLE, TEST_VIEWS, ClipSpec
from vidbench.datasets.decode_cache import DEFAULT_BUDGET_MB
from vidbench.datasets.synthetic import SynthConfig
from vidbench.models.classifier import WARMUP_SCHEDULERS
from vidbench.models.registry import (
    auto_modalities,
    broken_plugins,
    check_architecture,
    default_input_spec,
    list_models,
    model_options,
)

MODALITIES = ("rgb", "flow", "rgb+flow")
BUILTIN_SWEEPS = (
    "smoke",
    "diagnostic",
    "table2",
    "table2_kinetics",
    "table4",
    "table5",
    "splits",
    "transfer",
    "ssv2",
)
# What `input:` may set: the clip settings of ClipSpec (test views come from `eval:`) and
# whether training clips are mirrored; `per_arch:` may set the geometry of one architecture
# (the flow settings are the dataset's, shared by every cell that reads its flow).
INPUT_KEYS = (*(k for k in OVERRIDABLE if k not in TEST_VIEWS), "flip")
PER_ARCH_INPUT_KEYS = ("clip_len", "frame_interval", "crop_size", "short_side", "flow_stack")
# A sweep is a page of settings: YAML aliases that expand past this many values are a
# "billion laughs" bomb, refused before anything is built from them.
# Names that become folder and cell names: plain, so none walks out of the results folder.
SWEEP_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
DATASET_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
MAX_SEED = 2**32 - 1  # Lightning's seed_everything takes 0..2**32 - 1
# Lightning's precision settings, and auto (bf16-mixed on a GPU, 32-true on the CPU)
PRECISIONS = (
    "auto",
    "32-true",
    "bf16-mixed",
    "16-mixed",
    "bf16-true",
    "16-true",
    "64-true",
    "transformer-engine",
    "transformer-engine-float16",
)
ECHO_CHARS = 200  # longest value quoted back in an error message
QUIET = ("missing", "value_error")  # errors whose message says all (no value echoed)


class Strict(BaseModel):
    """Unknown keys refused; true/false refused where a number is meant (pydantic would
    read `max_steps: true` as 1)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    @model_validator(mode="before")
    @classmethod
    def no_booleans_for_numbers(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for name, field in cls.model_fields.items():
                if name in data and _holds_bool(data[name]) and not _takes_bool(field.annotation):
                    raise ValueError(
                        f"{name}: {data[name]!r} holds true/false where a value is meant"
                    )
        return data


def _holds_bool(value: Any) -> bool:
    if isinstance(value, list | tuple):
        return any(_holds_bool(v) for v in value)
    return isinstance(value, bool)


def _takes_bool(annotation: Any) -> bool:
    """Whether a field of type `annotation` may hold a boolean anywhere (bool, Any, or a
    container of them)."""
    if annotation is bool or annotation is Any:
        return True
    return any(_takes_bool(arg) for arg in get_args(annotation))


class DatasetConfig(Strict):
    format: str = "ucf101"  # one of dataset_formats(): built in, or a package's
    videos: str | None = None
    annotations: str | None = None
    flow: str | None = None  # for synthetic data the runner extracts it (cached)
    folds: list[int] = Field(default=[1], min_length=1)
    synthetic: SynthConfig | None = None  # the built-in synthetic-motion data, made and cached
    # the split the final test reads: test or val (None: test, or val where the test split
    # is unlabelled); a cell whose test split has no video present fails before training
    test_split: Literal["test", "val"] | None = None
    # the share of the test split's listed videos (and their flow) that must be present
    # (`bench.preflight`); lower it to run on a partial copy, which every record then says
    min_coverage: float = Field(0.95, ge=0, le=1, allow_inf_nan=False)

    @field_validator("format")
    @classmethod
    def known_format(cls, value: str) -> str:
        return check_format(value)

    @model_validator(mode="after")
    def has_a_source(self) -> DatasetConfig:
        if self.synthetic is None and self.format == "folder" and self.annotations is None:
            self.annotations = self.videos  # class folders: the videos are the annotations
        if self.synthetic is None and (self.videos is None or self.annotations is None):
            raise ValueError(
                "give videos and annotations (annotations may be left out for the folder "
                "format; synthetic: {} for built-in data)"
            )
        allowed = (1, 2, 3) if self.format in ("ucf101", "hmdb51") else (1,)
        if self.format not in DATASETS:  # a package's format: its parser judges the fold
            allowed = tuple(sorted({*self.folds} & set(range(1, 100))))
        wrong = [fold for fold in self.folds if fold not in allowed]
        if wrong or len(set(self.folds)) != len(self.folds):
            raise ValueError(
                f"folds {self.folds}: {self.format} has folds {list(allowed)}, each once"
            )
        return self


class TrainConfig(Strict):
    max_steps: int = Field(-1, ge=-1)  # -1: no limit (then max_epochs)
    max_epochs: PositiveInt | None = None
    batch_size: PositiveInt = 8
    optimizer: Literal["sgd", "adamw"] = "sgd"
    lr: float = Field(0.01, gt=0, allow_inf_nan=False)
    momentum: float = Field(0.9, ge=0, le=1, allow_inf_nan=False)
    weight_decay: float = Field(1e-7, ge=0, allow_inf_nan=False)
    # The batch the learning rate is for: per-device batch x devices x nodes x gradient
    # accumulation, the accumulation derived (None: no accumulation). Refused unless it
    # can be met exactly, so a run on fewer GPUs trains at the paper's batch.
    global_batch: PositiveInt | None = None
    # none; cosine (to 0 over the run); step (/10 every lr_step); plateau (/10 when the
    # validation loss has not improved by plateau_threshold, relative, for plateau_patience
    # validations: the paper's rule); piecewise (lr_schedule: [[from_step, lr], ...])
    scheduler: Literal["none", "cosine", "step", "plateau", "piecewise"] = "none"
    lr_step: PositiveInt = 1000
    plateau_patience: NonNegativeInt = 2
    plateau_threshold: float = Field(1e-3, ge=0, allow_inf_nan=False)
    lr_schedule: list[tuple[NonNegativeInt, PositiveFloat]] | None = None
    # linear warm-up from lr / warmup_steps to lr over the first steps (scheduler none or
    # cosine; cosine then decays over the steps after it)
    warmup_steps: NonNegativeInt = 0
    # the LightningModule through torch.compile before fit and test (Lightning compiles
    # its *_step methods too); the first steps pay the compilation
    compile: bool = False
    precision: Literal[PRECISIONS] = "auto"  # type: ignore[valid-type]  # auto: bf16-mixed on GPU, 32-true on CPU
    num_workers: NonNegativeInt = 2
    val_every_epochs: NonNegativeInt = 1
    # learning-rate selection on validation: each rate of the grid trains `lr_search_steps`
    # at a constant rate from the same start, the best validation top-1 trains the cell
    lr_grid: list[PositiveFloat] | None = Field(None, min_length=2)
    lr_search_steps: PositiveInt = 500
    # where a dataset has no validation split (UCF-101, HMDB-51), this fraction of the
    # training split's groups validates (only when validation runs; never the test split)
    val_holdout: float = Field(0.1, gt=0, lt=1, allow_inf_nan=False)
    # fixed / finetune start from it (scratch ignores it); {arch} and {modality} in the
    # path are replaced by the cell's, so each stream finds its own checkpoint
    init_checkpoint: str | None = None
    accelerator: str = "auto"
    devices: int | str = 1
    num_nodes: PositiveInt = 1
    strategy: str = "auto"
    max_bad_fraction: float = Field(0.01, ge=0, le=1, allow_inf_nan=False)
    decoder: Literal["decord", "pyav"] = "decord"
    # MB of decoded video held per process when a whole split fits (datasets.decode_cache;
    # 0: decode every clip from disk). The same frames either way, so not in the hash.
    decode_cache_mb: float = Field(DEFAULT_BUDGET_MB, ge=0, allow_inf_nan=False)

    @field_validator("devices")
    @classmethod
    def devices_lightning_takes(cls, devices: int | str) -> int | str:
        """A count (>= 1, or -1 for all), `auto`, or a list of indices as text (`0,1`)."""
        ok = (
            devices == -1 or devices >= 1
            if isinstance(devices, int)
            else devices == "auto" or re.fullmatch(r"-1|\d+(,\d+)*,?", devices.strip())
        )
        if not ok:
            raise ValueError(
                f"{devices!r}: give a number of devices (>= 1, or -1 for all), auto, or "
                "device indices such as '0,1'"
            )
        return devices

    @model_validator(mode="after")
    def schedule_is_complete(self) -> TrainConfig:
        if self.scheduler == "piecewise":
            steps = [step for step, _ in self.lr_schedule or []]
            if not steps or steps[0] != 0 or steps != sorted(set(steps)):
                raise ValueError(
                    "scheduler piecewise needs lr_schedule: [[0, lr], [step, lr], ...] with "
                    f"increasing steps from 0, got {self.lr_schedule}"
                )
        elif self.lr_schedule is not None:
            raise ValueError("lr_schedule goes with scheduler: piecewise")
        if self.warmup_steps and self.scheduler not in WARMUP_SCHEDULERS:
            raise ValueError(
                f"warmup_steps goes with scheduler {' or '.join(WARMUP_SCHEDULERS)}, "
                f"not {self.scheduler}"
            )
        if self.warmup_steps and 0 < self.max_steps <= self.warmup_steps:
            raise ValueError(
                f"warmup_steps {self.warmup_steps} must be fewer than max_steps {self.max_steps}"
            )
        if self.scheduler == "plateau" and self.val_every_epochs == 0:
            raise ValueError("scheduler plateau watches the validation loss: set val_every_epochs")
        if self.lr_grid and self.scheduler == "piecewise":
            raise ValueError("lr_grid chooses the learning rate; a piecewise schedule fixes it")
        self.accumulation()  # a global batch that cannot be met is refused here
        return self

    def accumulation(self) -> int:
        """Gradient accumulation steps that make `global_batch`; 1 without one.
        ValueError when it cannot be met exactly, naming batch sizes that could."""
        if self.global_batch is None:
            return 1
        if isinstance(self.devices, bool) or not isinstance(self.devices, int) or self.devices < 1:
            raise ValueError(
                f"global_batch needs devices as a number of devices, got {self.devices!r}"
            )
        world = self.devices * self.num_nodes
        per_step = self.batch_size * world
        if self.global_batch % per_step:
            fits = [
                b for b in range(1, self.global_batch + 1) if self.global_batch % (b * world) == 0
            ]
            raise ValueError(
                f"global_batch {self.global_batch} is not batch_size {self.batch_size} x "
                f"{self.devices} device(s) x {self.num_nodes} node(s) x a whole number of "
                f"accumulation steps; batch sizes that fit: {fits[-6:]}"
            )
        return self.global_batch // per_step

    def batch_plan(self, devices: int | None = None) -> dict[str, int]:
        """{"per_device", "devices", "nodes", "accumulation", "global"}: `devices` as the
        Trainer resolved them (`auto`, a list...), else as given (0 when not a number)."""
        if devices is None:
            devices = self.devices if isinstance(self.devices, int) else 0
        accumulation = self.accumulation()
        return {
            "per_device": self.batch_size,
            "devices": devices,
            "nodes": self.num_nodes,
            "accumulation": accumulation,
            "global": self.batch_size * max(devices, 1) * self.num_nodes * accumulation,
        }


class EvalConfig(Strict):
    """Test views. `paper`: each architecture as the paper tested it (its ClipSpec: C3D 15
    consecutive 16-frame clips, Two-Stream 25 snapshots, I3D the whole video...); `clips`:
    `clips` evenly spaced clips of the training length, or the whole video (`full_video`),
    for every architecture. `crops`: 1 (centre) or 3 per clip, either way."""

    views: Literal["paper", "clips"] = "paper"
    clips: PositiveInt = 1
    crops: Literal[1, 3] = 1
    full_video: bool = False
    throughput_batches: PositiveInt = 5  # timed blocks of batches per cost figure (>= 0.1 s each)
    # a quick look: validate and test on at most this many videos of each split (a fixed
    # subset spread over the list); recorded, and never cited against the paper
    max_videos: PositiveInt | None = None
    # keep every video's full class probabilities beside the top-5 predictions
    # (`predictions/<cell>.probs.npy`, float16); costs disk, not results
    keep_probs: bool = False

    @model_validator(mode="after")
    def clips_go_with_clip_views(self) -> EvalConfig:
        if self.views == "paper" and (self.clips != 1 or self.full_video):
            raise ValueError(
                "clips and full_video choose the views of `views: clips`; with `views: paper` "
                "each architecture is tested as the paper tested it"
            )
        return self


class WandbConfig(Strict):
    enabled: bool = True
    mode: Literal["offline", "online", "disabled"] | None = None  # None: $WANDB_MODE or offline
    project: str = "vidbench"
    group: str | None = None  # None: the sweep's name and output folder
    timeout_s: float = Field(60.0, gt=0, allow_inf_nan=False)


class LauncherConfig(Strict):
    """Where the cells run (`vidbench.bench.launch`); none of it changes a cell's result
    except `threads` (training is deterministic per cell and thread count).

    `inline`: one after another in this process. `local`: `jobs` cells at a time, each in
    its own process; GPUs are shared out between jobs, else the cores. `slurm`: each cell
    a SLURM job (submitit) with these resources; a cell with `train.devices` or
    `train.num_nodes` > 1 asks for them and runs as DDP over its tasks.
    """

    kind: Literal["inline", "local", "slurm"] = "inline"
    jobs: PositiveInt | None = None  # local: cells at once (default: GPUs per cell, else 1)
    threads: PositiveInt | None = None  # torch threads per job (default: cores / jobs)
    wait: bool = True  # slurm: follow the jobs until they end (False: submit and return)
    poll_s: float = Field(15.0, gt=0, allow_inf_nan=False)  # slurm: how often to look
    partition: str | None = None
    time_min: PositiveInt = 24 * 60  # per job
    cpus_per_task: PositiveInt | None = None  # default: num_workers + 1 per GPU task
    mem_gb: PositiveFloat | None = None
    gpus_per_node: NonNegativeInt | None = None  # default: the cell's devices on GPU, else 0
    # extra sbatch options, e.g. {account: x, qos: y, exclusive: true}
    sbatch: dict[str, bool | int | str] = Field(default_factory=dict)
    setup: list[str] = Field(default_factory=list)  # shell lines first (module load ...)


class SweepConfig(Strict):
    name: str
    arch: list[str] = Field(min_length=1)
    modality: Literal["auto"] | list[str] = "auto"
    protocol: list[Literal["scratch", "fixed", "finetune"]] = Field(["scratch"], min_length=1)
    seed: list[int] = Field([0], min_length=1)
    datasets: dict[str, DatasetConfig]
    model: dict[str, Any] = Field(default_factory=dict)
    per_arch: dict[str, dict[str, Any]] = Field(default_factory=dict)
    input: dict[str, Any] = Field(default_factory=dict)  # ClipSpec fields and `flip`
    train: TrainConfig = TrainConfig()
    # train settings for the cells of one modality, e.g. the flow stream's longer schedule
    per_modality: dict[Literal["rgb", "flow", "rgb+flow"], dict[str, Any]] = Field(
        default_factory=dict
    )
    eval: EvalConfig = EvalConfig()
    wandb: WandbConfig = WandbConfig()
    launcher: LauncherConfig = LauncherConfig()
    # the sanity check of the paper's claim (smoke sweep): these must beat frame_avg
    expect_temporal_beats_frame_avg: bool = False

    @field_validator("name")
    @classmethod
    def plain_sweep_name(cls, name: str) -> str:
        if not SWEEP_NAME.fullmatch(name):
            raise ValueError(
                f"{name!r}: a sweep name is letters, digits, '_', '.' and '-', starting with a "
                "letter or digit (it names folders)"
            )
        return name

    @field_validator("datasets", mode="before")
    @classmethod
    def without_dropped_datasets(cls, datasets: Any) -> Any:
        """`--set datasets.hmdb51=null` leaves a dataset out of a sweep."""
        if isinstance(datasets, dict):
            datasets = {name: value for name, value in datasets.items() if value is not None}
            if not datasets:
                raise ValueError("no dataset left: every one is null")
        return datasets

    @field_validator("datasets")
    @classmethod
    def plain_dataset_names(cls, datasets: dict[str, DatasetConfig]) -> dict[str, DatasetConfig]:
        wrong = [name for name in datasets if not DATASET_NAME.fullmatch(name)]
        if wrong:
            raise ValueError(
                f"dataset name(s) {wrong}: a dataset name is letters, digits and '_', starting "
                "with a letter (it names cells and their folders)"
            )
        return datasets

    @field_validator("seed")
    @classmethod
    def distinct_seeds(cls, seeds: list[int]) -> list[int]:
        wrong = [s for s in seeds if isinstance(s, bool) or not 0 <= s <= MAX_SEED]
        if wrong:
            raise ValueError(f"seeds {wrong}: each a whole number in 0..{MAX_SEED}")
        return _distinct(seeds, "seed")

    @field_validator("arch")
    @classmethod
    def known_architectures(cls, names: list[str]) -> list[str]:
        unknown = []
        for name in names:
            try:
                check_architecture(name)
            except ValueError:
                if ":" in name or name in broken_plugins():  # its own error says why
                    raise
                unknown.append(name)
        if unknown:
            raise ValueError(
                f"unknown architecture(s) {unknown}; choose from {list_models()} or name a "
                "constructor as module:callable"
            )
        return _distinct(names, "arch")

    @field_validator("input")
    @classmethod
    def known_input_keys(cls, values: dict[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(values) - set(INPUT_KEYS))
        if unknown:
            raise ValueError(f"unknown key(s) {unknown}; choose from {list(INPUT_KEYS)}")
        if not isinstance(values.get("flip", True), bool):
            raise ValueError(f"flip must be true or false, got {values['flip']!r}")
        return {k: v for k, v in values.items() if v is not None}

    @field_validator("modality")
    @classmethod
    def known_modalities(cls, value: str | list[str]) -> str | list[str]:
        if value != "auto":
            unknown = [m for m in value if m not in MODALITIES]
            if unknown:
                raise ValueError(f"unknown modality {unknown}; choose from {MODALITIES} or auto")
        return value


def _distinct(values: list, key: str) -> list:
    """`values`, or a ValueError naming those given twice (each would run twice)."""
    twice = sorted({v for v in values if values.count(v) > 1}, key=str)
    if twice:
        raise ValueError(f"{twice} given twice in {key}; each runs once")
    return values


def arch_modalities(arch: str) -> tuple[str, ...]:
    """What `arch` can be trained or evaluated on: `rgb+flow` for I3D is the fused
    evaluation of its separately trained streams (docs/protocol.md 1e)."""
    if "modalities" in model_options(arch):
        return MODALITIES
    return ("+".join(default_input_spec(arch).modalities),)


def load_sweep(source: str | Path | None, overrides: list[str] = ()) -> SweepConfig:
    """A sweep from a YAML file or a built-in name (None = `smoke`), with overrides applied;
    SweepError naming what is wrong (an unknown key with the closest allowed one)."""
    data, where = read_sweep(source, list(overrides))
    return validate(data, where)


def validate(data: dict[str, Any], where: str = "sweep") -> SweepConfig:
    try:
        sweep = SweepConfig.model_validate(data)
    except ValidationError as error:
        problems = [
            shorten(
                f"{'.'.join(str(p) for p in e['loc']) or 'sweep'}: {e['msg']}"
                # our own validators name the value; pydantic's own messages do not
                + (f" (got {shorten(repr(e['input']))})" if e["type"] not in QUIET else ""),
                2 * ECHO_CHARS,
            )
            for e in error.errors()
        ]
        raise SweepError(f"{where}: " + "; ".join(problems)) from None
    _check_arch_keys(sweep, where)
    return sweep


def shorten(text: str, limit: int = ECHO_CHARS) -> str:
    """`text`, cut to `limit` characters with the number left out said."""
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text) - limit:,} more chars)"


def _check_arch_keys(sweep: SweepConfig, where: str) -> None:
    for arch, options in sweep.per_arch.items():
        try:  # one left out of `arch` (by an override) is fine
            check_architecture(arch)
        except ValueError as error:
            raise SweepError(f"{where}: per_arch.{arch}: {error}") from None
        allowed = [*model_options(arch), *PER_ARCH_INPUT_KEYS, "train", "modality"]
        unknown = sorted(set(options) - set(allowed))
        if unknown:
            raise SweepError(f"{where}: per_arch.{arch}: unknown key(s) {unknown}; {allowed=}")
    if sweep.model:
        takers = {k for arch in list_models() for k in model_options(arch)}
        unknown = sorted(set(sweep.model) - takers)
        if unknown:
            raise SweepError(
                f"{where}: model: no architecture of this sweep takes {unknown}; "
                f"they take {sorted(takers)}"
            )
    for arch in sweep.arch:
        chosen = sweep.per_arch.get(arch, {}).get("modality", sweep.modality)
        if chosen == "auto":
            continue
        if not isinstance(chosen, list) or not chosen:
            raise SweepError(f"{where}: per_arch.{arch}.modality: a list of modalities or auto")
        wrong = [m for m in chosen if m not in arch_modalities(arch)]
        if wrong:
            raise SweepError(
                f"{where}: modality {wrong} is not one {arch} can take; it takes "
                f"{list(arch_modalities(arch))} (modality: auto runs each on what it has)"
            )
    needs_flow = any("flow" in m for arch in sweep.arch for m in cell_modalities(sweep, arch))
    for name, dataset in sweep.datasets.items():
        if needs_flow and dataset.flow is None and dataset.synthetic is None:
            raise SweepError(f"{where}: datasets.{name}.flow: the flow modality needs a flow root")
    for arch in sweep.arch:
        for modality in cell_modalities(sweep, arch):
            try:
                cell_spec(sweep, arch, modality)
            except ValueError as error:
                raise SweepError(f"{where}: {arch} {modality} input: {error}") from None
    for arch in sweep.arch:
        for modality in cell_modalities(sweep, arch):
            try:
                cell_train(sweep, arch, modality)
            except ValidationError as error:
                first = error.errors()[0]
                field = ".".join(map(str, first["loc"]))
                source = (
                    f"per_arch.{arch}.train"
                    if field in (sweep.per_arch.get(arch, {}).get("train") or {})
                    else f"per_modality.{modality}"
                )
                raise SweepError(f"{where}: {source}.{field}: {first['msg']}") from None
            except TypeError:
                raise SweepError(
                    f"{where}: per_arch.{arch}.train: a mapping of train settings, got "
                    f"{shorten(repr(sweep.per_arch[arch]['train']))}"
                ) from None
    if any(p != "scratch" for p in sweep.protocol) and not sweep.train.init_checkpoint:
        raise SweepError(
            f"{where}: protocol {sweep.protocol} needs train.init_checkpoint (the pretrained "
            "model that `fixed` and `finetune` start from)"
        )


def cell_modalities(sweep: SweepConfig, arch: str) -> tuple[str, ...]:
    """The modalities `arch` runs on in `sweep`: its `per_arch.<arch>.modality`, else the
    sweep's `modality` (`auto`: those the architecture declares, else all it takes)."""
    chosen = sweep.per_arch.get(arch, {}).get("modality", sweep.modality)
    if chosen == "auto":
        return auto_modalities(arch) or arch_modalities(arch)
    return tuple(chosen)


def cell_train(sweep: SweepConfig, arch: str, modality: str) -> TrainConfig:
    """The sweep's `train`, with the `per_modality` settings of `modality`, then the
    `per_arch.<arch>.train` settings applied (the paper trained the 3D ConvNets on
    Kinetics with twice the replicas of the others, so a larger global batch)."""
    changes = {
        **(sweep.per_modality.get(modality) or {}),
        **(sweep.per_arch.get(arch, {}).get("train") or {}),
    }
    if not changes:
        return sweep.train
    return TrainConfig.model_validate({**sweep.train.model_dump(), **changes})


def cell_init_checkpoint(train: TrainConfig, key: Any) -> str | None:
    """The checkpoint a fixed or finetune cell (`key`: a CellKey or Cell) trained with
    `train` starts from, `{arch}`, `{modality}`, `{dataset}` and `{fold}` in its path
    replaced by the cell's; None for scratch."""
    if key.protocol == "scratch" or not train.init_checkpoint:
        return None
    return train.init_checkpoint.format(
        arch=key.arch, modality=key.modality, dataset=key.dataset, fold=key.fold
    )


def cell_model_options(sweep: SweepConfig, arch: str, modality: str) -> dict[str, Any]:
    """The options `arch` is built with in a cell: the sweep's `model` and `per_arch`
    options it takes, and the cell's modalities where it takes them (not where the cell's
    modality is the one the architecture declares for `auto`: it is built so by default,
    and its cells keep the configuration they had before it took other modalities)."""
    takes = set(model_options(arch))
    chosen = {**sweep.model, **sweep.per_arch.get(arch, {})}
    options = {k: v for k, v in chosen.items() if k in takes}
    if "modalities" in takes and modality not in (auto_modalities(arch) or ()):
        options["modalities"] = modality.split("+")
    return options


def cell_spec(sweep: SweepConfig, arch: str, modality: str) -> ClipSpec:
    """What a cell feeds `arch`: the architecture's own `input_spec` (with the cell's
    options, and its paper test views), overridden by `input`, then `per_arch`, then the
    `eval` views; the shorter side made explicit. ValueError names a bad value."""
    spec = default_input_spec(arch, **cell_model_options(sweep, arch, modality))
    per_arch = sweep.per_arch.get(arch, {})
    changes = {k: v for k, v in {**sweep.input, **per_arch}.items() if k in OVERRIDABLE}
    views: dict[str, Any] = {"test_crops": sweep.eval.crops}
    if sweep.eval.views == "clips":
        views.update(
            test_clips=sweep.eval.clips,
            test_clip_len=None,
            test_layout="spread",
            full_video_test=sweep.eval.full_video,
        )
    spec = spec.replace(**changes, **views, modalities=tuple(modality.split("+")))
    return spec.replace(short_side=spec.resize_to)
