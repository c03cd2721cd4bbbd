"""`VideoClassifier`: the one LightningModule that trains and tests every architecture.

The network is built from `arch` + `model_options` through `vidbench.models.create_model`; the
batch is the data layer's dict. Metrics are torchmetrics collections per stage: top-1,
top-5 and mean class accuracy on clips, and at test time also on videos (softmax averaged
over all views of a video). Protocols (docs/protocol.md 3, Table 4): `scratch` and `finetune` train
everything; `fixed` freezes all but the last layer and keeps BatchNorm in eval mode;
`init_checkpoint` starts from another checkpoint's weights (a Kinetics model, say).
Checkpoints carry the class names, `trained_on` (dataset, annotations, fold), so the
runner can refuse to test a model on another split of the data it was trained on,
`started_from` (what its network started from: {"start": scratch, imagenet, kinetics or
imagenet+kinetics, and the weights or checkpoint}), so a result is compared only with the
paper's number under the same start, and `preprocessing` (its `ClipSpec`), so a
prediction prepares videos as training did without the user retyping it.
"""

from __future__ import annotations

import hashlib
import logging
import math
from typing import Any

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch import nn
from torchmetrics import Metric, MetricCollection
from torchmetrics.classification import MulticlassAccuracy

from vidbench.datasets.clip_spec import ClipSpec
from vidbench.datasets.transforms import to_model_input
from vidbench.models.registry import create_model

log = logging.getLogger(__name__)
PROTOCOLS = ("scratch", "fixed", "finetune")
OPTIMIZERS = ("sgd", "adamw")
SCHEDULERS = ("none", "cosine", "step", "plateau", "piecewise")
WARMUP_SCHEDULERS = ("none", "cosine")  # the ones a linear warm-up can precede


def accuracy_metrics(num_classes: int) -> MetricCollection:
    """Top-1 and top-5 over all samples, and accuracy averaged over classes.

    compute_groups=False: with groups on, torchmetrics merges metrics whose states are
    equal after the first batch, and top-5 would then report top-1 from a batch where
    both happened to agree.
    """
    return MetricCollection(
        {
            "top1": MulticlassAccuracy(num_classes, top_k=1, average="micro"),
            "top5": MulticlassAccuracy(num_classes, top_k=min(5, num_classes), average="micro"),
            "mean_class": MulticlassAccuracy(num_classes, average="macro"),
        },
        compute_groups=False,
    )


def video_key(video_id: str) -> int:
    """A stable 63-bit integer for a video id (tensor metric states cannot hold strings)."""
    return int.from_bytes(hashlib.blake2b(video_id.encode(), digest_size=8).digest(), "big") >> 1


class VideoLevelAccuracy(Metric):
    """Accuracy of video predictions: the softmax of every view of a video averaged.

    update(probs (N, C), labels (N,), keys (N,)); states concatenate across processes, so
    the result is the same under DDP as on one device.
    """

    full_state_update = False

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.add_state("probs", default=[], dist_reduce_fx="cat")
        self.add_state("labels", default=[], dist_reduce_fx="cat")
        self.add_state("keys", default=[], dist_reduce_fx="cat")

    def update(self, probs: torch.Tensor, labels: torch.Tensor, keys: torch.Tensor) -> None:
        self.probs.append(probs.float())
        self.labels.append(labels)
        self.keys.append(keys)

    def compute(self) -> dict[str, torch.Tensor]:
        probs, labels, keys = (
            torch.cat(s) if isinstance(s, list) else s for s in (self.probs, self.labels, self.keys)
        )
        unique, inverse = torch.unique(keys, return_inverse=True)
        video_probs = torch.zeros(len(unique), self.num_classes, device=probs.device).index_add_(
            0, inverse, probs
        )
        video_labels = torch.zeros(len(unique), dtype=labels.dtype, device=labels.device).scatter_(
            0, inverse, labels
        )
        metrics = accuracy_metrics(self.num_classes).to(probs.device)
        result = metrics(video_probs, video_labels)
        result["videos"] = torch.tensor(len(unique))
        views = torch.zeros(len(unique), device=probs.device).index_add_(
            0, inverse, torch.ones_like(keys, dtype=torch.float)
        )
        # per video: its key, the views' mean probabilities (V, C) and its label
        self.per_video = (unique.cpu(), (video_probs / views[:, None]).cpu(), video_labels.cpu())
        return result


class VideoClassifier(pl.LightningModule):
    """Any registered architecture trained with cross-entropy.

    `module(batch)` returns logits (B, num_classes). Models with `training_logits` (the
    ConvNet+LSTM) train on every time step's output and report the last one's (docs/protocol.md 1a).
    """

    def __init__(
        self,
        arch: str,
        num_classes: int,
        class_names: list[str] | None = None,
        model_options: dict[str, Any] | None = None,
        protocol: str = "scratch",
        optimizer: str = "sgd",
        lr: float = 0.01,
        momentum: float = 0.9,
        weight_decay: float = 1e-7,
        scheduler: str = "none",
        lr_step: int = 1000,
        lr_schedule: list[list[float]] | None = None,
        warmup_steps: int = 0,
        plateau_patience: int = 2,
        plateau_threshold: float = 1e-3,
        init_checkpoint: str | None = None,
        trained_on: dict[str, Any] | None = None,
        started_from: dict[str, Any] | None = None,
        preprocessing: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        for name, value, allowed in (
            ("protocol", protocol, PROTOCOLS),
            ("optimizer", optimizer, OPTIMIZERS),
            ("scheduler", scheduler, SCHEDULERS),
        ):
            if value not in allowed:
                raise ValueError(f"{name} {value!r} is not one of {allowed}")
        if scheduler == "piecewise" and not lr_schedule:
            raise ValueError("scheduler piecewise needs lr_schedule [[from_step, lr], ...]")
        if warmup_steps and scheduler not in WARMUP_SCHEDULERS:
            raise ValueError(
                f"warmup_steps goes with scheduler {WARMUP_SCHEDULERS}, not {scheduler!r}"
            )
        if class_names is not None and len(class_names) != num_classes:
            raise ValueError(f"{len(class_names)} class names for {num_classes} classes")
        self.save_hyperparameters(logger=False)  # W&B gets the resolved cell
        self.net = create_model(arch, num_classes, **(model_options or {}))
        self.class_names = (
            list(class_names) if class_names else [str(i) for i in range(num_classes)]
        )
        self.metrics = nn.ModuleDict(
            {
                f"{stage}_metrics": accuracy_metrics(num_classes).clone(prefix=f"{stage}/")
                for stage in ("train", "val", "test")
            }
        )
        self.video_metrics = VideoLevelAccuracy(num_classes)
        self.test_video_ids: dict[int, str] = {}  # video_key -> video id, this test pass
        if init_checkpoint:
            self.load_pretrained(init_checkpoint)
        if protocol == "fixed":
            head = self.head_parameters()
            for parameter in self.net.parameters():
                parameter.requires_grad = any(parameter is h for h in head)
            self.train()  # BatchNorm frozen from the start: Lightning never calls train()

    def load_pretrained(self, path: str) -> list[str]:
        """Start from the network weights of another checkpoint (e.g. Kinetics for the
        Table 4 protocols): every tensor of matching name and shape is copied; the rest
        (a head for other classes) keeps its fresh initialisation. Returns those keys."""
        from vidbench.models.backbones import load_weights

        source = {
            k.removeprefix("net."): v for k, v in load_weights(path).items() if k.startswith("net.")
        }
        own = self.net.state_dict()
        usable = {k: v for k, v in source.items() if k in own and own[k].shape == v.shape}
        if not usable:
            raise ValueError(f"{path}: no weights fit architecture {self.hparams.arch!r}")
        self.net.load_state_dict(usable, strict=False)
        fresh = sorted(set(own) - set(usable))
        if fresh:
            log.info(
                "initialised from %s; %d tensors start fresh (first: %s)",
                path,
                len(fresh),
                fresh[0],
            )
        return fresh

    def head_parameters(self) -> list[nn.Parameter]:
        """Parameters of the layer(s) that output the classes (the network's
        `get_classifier()`): what the `fixed` protocol trains."""
        return list(self.net.get_classifier().parameters())

    @property
    def clip_spec(self) -> ClipSpec | None:
        """What the network is fed (`preprocessing`, stored as a plain dict); None when the
        checkpoint does not say. ValueError when what it says is incomplete or wrong."""
        stored = self.hparams.get("preprocessing")
        return ClipSpec.from_dict(stored, "the checkpoint's preprocessing") if stored else None

    def train(self, mode: bool = True) -> VideoClassifier:
        super().train(mode)
        if self.hparams.protocol == "fixed":  # frozen trunk: BatchNorm keeps its statistics
            for module in self.net.modules():
                if isinstance(module, nn.modules.batchnorm._BatchNorm):
                    module.eval()
        return self

    def on_train_epoch_start(self) -> None:
        self.train()  # the protocol's modes, whatever mode the module was left in

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Logits (B, classes) for model inputs (`to_model_input`); the data path's uint8
        clips are converted here when no data module did it on the way."""
        if any(isinstance(v, torch.Tensor) and v.dtype == torch.uint8 for v in batch.values()):
            spec = self.clip_spec or self.net.input_spec
            batch = to_model_input(batch, spec.flow_stack)
        return self.net(batch)

    def _step(self, batch: dict[str, Any], stage: str) -> torch.Tensor | None:
        if (
            "label" not in batch
        ):  # every video of this batch failed to decode (data layer counted it)
            return None
        labels = batch["label"]
        if stage == "train" and hasattr(self.net, "training_logits"):
            steps = self.net.training_logits(batch)  # (B, T, C)
            loss = F.cross_entropy(steps.flatten(0, 1), labels.repeat_interleave(steps.shape[1]))
            logits = steps[:, -1]
        else:
            logits = self(batch)
            loss = F.cross_entropy(logits, labels)
        metrics = self.metrics[f"{stage}_metrics"]
        metrics.update(logits, labels)
        self.log(
            f"{stage}/loss",
            loss,
            batch_size=len(labels),
            prog_bar=stage != "test",
            sync_dist=stage != "train",
        )
        self.log_dict(metrics, batch_size=len(labels), prog_bar=stage == "val")
        if stage == "test":
            keys = torch.tensor([video_key(v) for v in batch["video_id"]], device=labels.device)
            self.video_metrics.update(logits.softmax(dim=-1), labels, keys)
            self.test_video_ids.update(zip(keys.tolist(), batch["video_id"], strict=True))
        return loss

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor | None:
        return self._step(batch, "train")

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        self._step(batch, "val")

    def test_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        self._step(batch, "test")

    def on_test_epoch_start(self) -> None:
        self.test_video_ids: dict[int, str] = {}

    def on_test_epoch_end(self) -> None:
        result = self.video_metrics.compute()
        self.log_dict({f"test_video/{k}": v.float() for k, v in result.items()})
        keys, probs, labels = self.video_metrics.per_video
        names = self.test_video_ids
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            gathered: list[dict[int, str]] = [{}] * torch.distributed.get_world_size()
            torch.distributed.all_gather_object(gathered, names)  # every rank's video ids
            names = {k: v for part in gathered for k, v in part.items()}
        # (video ids (V,), labels (V,), mean view probabilities (V, C)): `bench.predictions`
        self.test_videos = ([names[k] for k in keys.tolist()], labels, probs)
        self.video_metrics.reset()

    def configure_optimizers(self):
        hp = self.hparams
        parameters = [p for p in self.parameters() if p.requires_grad]
        if hp.optimizer == "sgd":
            optimizer = torch.optim.SGD(
                parameters, lr=hp.lr, momentum=hp.momentum, weight_decay=hp.weight_decay
            )
        else:
            # fused: one kernel per step instead of a dozen passes per tensor (the same
            # update; C3D's step on one CPU thread 17 ms instead of 69), where supported
            fused = all(p.device.type in ("cpu", "cuda") for p in parameters)
            optimizer = torch.optim.AdamW(
                parameters, lr=hp.lr, weight_decay=hp.weight_decay, fused=fused or None
            )
        warmup = hp.get("warmup_steps", 0)  # checkpoints from before warm-up have none
        if hp.scheduler == "none" and not warmup:
            return optimizer
        if hp.scheduler == "plateau":  # the paper's rule: /10 when validation loss saturates
            plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(
                optimizer, factor=0.1, patience=hp.plateau_patience, threshold=hp.plateau_threshold
            )
            every = self.trainer.check_val_every_n_epoch if self.trainer else 1
            return {
                "optimizer": optimizer,
                "lr_scheduler": {
                    "scheduler": plateau,
                    "monitor": "val/loss",
                    "interval": "epoch",
                    "frequency": every,
                    "strict": True,
                },
            }
        if warmup:
            total = max(1, self.trainer.estimated_stepping_batches)
            cosine = hp.scheduler == "cosine"
            schedule = torch.optim.lr_scheduler.LambdaLR(
                optimizer, lambda step: warmup_factor(step, warmup, total, cosine)
            )
        elif hp.scheduler == "cosine":
            schedule = torch.optim.lr_scheduler.CosineAnnealingLR(
                optimizer, max(1, self.trainer.estimated_stepping_batches)
            )
        elif hp.scheduler == "piecewise":
            schedule = torch.optim.lr_scheduler.LambdaLR(
                optimizer, lambda step: piecewise_lr(hp.lr_schedule, step) / hp.lr
            )
        else:
            schedule = torch.optim.lr_scheduler.StepLR(optimizer, hp.lr_step, gamma=0.1)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}


def warmup_factor(step: int, warmup: int, total: int, cosine: bool) -> float:
    """The learning rate at optimiser step `step`, as a fraction of the peak: rising
    linearly over `warmup` steps to 1 at step `warmup` - 1, then 1, or (`cosine`) a cosine
    decay to 0 at step `total`."""
    if step < warmup:
        return (step + 1) / warmup
    if not cosine:
        return 1.0
    return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warmup) / max(1, total - warmup))))


def piecewise_lr(schedule: list[list[float]], step: int) -> float:
    """The learning rate at optimiser step `step` of [[from_step, lr], ...] (from step 0)."""
    current = schedule[0][1]
    for start, lr in schedule:
        if step >= start:
            current = lr
    return current
