"""VideoClassifier on the synthetic data, video-level metrics, weight import and safe loading."""

from __future__ import annotations

import collections
import math

import pytest
import torch
from helpers import quiet_trainer, tiny_datamodule
from pytorch_i3d_layout import InceptionI3d
from test_models import randomise_batchnorm

from vidbench.bench.cli import main
from vidbench.models import VideoClassifier, list_models
from vidbench.models.backbones import load_weights
from vidbench.models.classifier import VideoLevelAccuracy, video_key
from vidbench.models.weights import load_classifier, load_labels, save_checkpoint


def test_fit_test_and_checkpoint_carry_class_names(synth_dataset, tmp_path):
    dm = tiny_datamodule(synth_dataset, clip_len=8, frame_interval=1, batch_size=8, test_clips=2)
    module = VideoClassifier(
        "i3d", dm.num_classes, dm.class_names, model_options={"width": 0.125}, lr=0.01
    )
    trainer = quiet_trainer(max_steps=2, limit_val_batches=0)  # UCF-101 layout: no val split
    trainer.fit(module, datamodule=dm)
    (result,) = trainer.test(module, datamodule=dm, verbose=False)
    clip_keys = {"test/top1", "test/top5", "test/mean_class"}
    video_keys = {
        "test_video/top1",
        "test_video/top5",
        "test_video/mean_class",
        "test_video/videos",
    }
    assert clip_keys | video_keys <= set(result)
    assert result["test_video/videos"] == len(
        dm.annotations.splits["test"]
    )  # 2 views each, 1 prediction
    trainer.save_checkpoint(tmp_path / "tiny.ckpt")
    restored = load_classifier(tmp_path / "tiny.ckpt")
    assert restored.hparams.class_names == dm.class_names
    batch = dm.to_device(next(iter(dm.test_dataloader())))
    module.eval()
    assert torch.allclose(restored.eval()(batch), module(batch), atol=1e-6)


def test_video_level_accuracy_averages_the_views():
    metric = VideoLevelAccuracy(num_classes=3)
    # video a: views say class 0 weakly, then class 1 strongly -> video says 1 (right)
    probs = torch.tensor([[0.5, 0.4, 0.1], [0.1, 0.8, 0.1], [0.2, 0.2, 0.6], [0.3, 0.3, 0.4]])
    labels = torch.tensor([1, 1, 2, 2])
    keys = torch.tensor([video_key("a"), video_key("a"), video_key("b"), video_key("b")])
    metric.update(probs, labels, keys)
    result = metric.compute()
    assert result["videos"] == 2 and result["top1"] == 1.0  # clip-level top-1 would be 3/4


def test_fixed_protocol_trains_only_the_last_layer_with_batchnorm_frozen():
    module = VideoClassifier("c3d", 4, model_options={"width": 0.125}, protocol="fixed")
    trainable = [name for name, p in module.net.named_parameters() if p.requires_grad]
    assert trainable == ["classifier.2.weight", "classifier.2.bias"]
    module.train()
    assert all(not m.training for m in module.net.modules() if isinstance(m, torch.nn.BatchNorm3d))
    assert (
        VideoClassifier("c3d", 4, model_options={"width": 0.125})
        .train()
        .net.features[0][1]
        .training
    )


def test_lstm_trains_on_every_time_step(monkeypatch):
    module = VideoClassifier("convnet_lstm", 3, model_options={"width": 0.125, "dropout": 0.0})
    calls = collections.Counter()
    original = module.net.training_logits
    monkeypatch.setattr(
        module.net, "training_logits", lambda b: calls.update(["steps"]) or original(b)
    )
    batch = {
        "rgb": torch.randn(2, 3, 4, 64, 64),
        "label": torch.tensor([0, 2]),
        "video_id": ["a", "b"],
    }
    module.log = lambda *a, **k: None
    module.log_dict = lambda *a, **k: None
    loss = module._step(batch, "train")
    steps = original(batch)
    expected = torch.nn.functional.cross_entropy(
        steps.flatten(0, 1), torch.tensor([0, 0, 0, 0, 2, 2, 2, 2])
    )
    assert calls["steps"] == 1 and torch.allclose(loss, expected, atol=1e-5)


def test_bad_settings_fail_with_the_choices():
    with pytest.raises(ValueError, match="protocol 'frozen' is not one of"):
        VideoClassifier("c3d", 4, protocol="frozen")
    with pytest.raises(ValueError, match="3 class names for 4 classes"):
        VideoClassifier("c3d", 4, class_names=["a", "b", "c"])


@pytest.mark.parametrize(
    ("stream", "channels", "labels"), [("rgb", 3, "kinetics400"), ("flow", 2, "kinetics600")]
)
def test_pytorch_i3d_import_gives_the_same_logits(tmp_path, stream, channels, labels):
    torch.manual_seed(0)
    names = load_labels(labels)
    source = InceptionI3d(num_classes=len(names), in_channels=channels).eval()
    randomise_batchnorm(source)
    torch.save(source.state_dict(), tmp_path / "source.pt")
    assert (
        main(
            [
                "weights",
                "import",
                "pytorch-i3d",
                str(tmp_path / "source.pt"),
                "--stream",
                stream,
                "--out",
                str(tmp_path / "imported.ckpt"),
                "--labels",
                labels,
            ]
        )
        == 0
    )
    imported = load_classifier(tmp_path / "imported.ckpt").eval()
    assert imported.hparams.class_names == names and len(names) == int(labels[-3:])
    clip = torch.randn(1, channels, 16, 224, 224)
    with torch.no_grad():
        expected = source(clip).mean(dim=2)  # pytorch-i3d: logits per time step, averaged
        ours = imported({stream: clip})
    assert (ours - expected).abs().max() < 1e-4


def test_import_rejects_a_mismatched_label_list(tmp_path, capsys):
    source = InceptionI3d(num_classes=10, in_channels=3)
    torch.save(source.state_dict(), tmp_path / "source.pt")
    code = main(
        [
            "weights",
            "import",
            "pytorch-i3d",
            str(tmp_path / "source.pt"),
            "--stream",
            "rgb",
            "--out",
            str(tmp_path / "x.ckpt"),
        ]
    )
    assert (
        code == 2
        and "predicts 10 classes but labels kinetics400 has 400" in capsys.readouterr().err
    )


class Payload:
    """Anything that needs unpickling: a checkpoint holding it must be refused."""


def test_checkpoints_with_pickled_objects_are_refused(tmp_path):
    module = VideoClassifier("c3d", 2, model_options={"width": 0.125})
    save_checkpoint(module, tmp_path / "clean.ckpt")
    assert load_classifier(tmp_path / "clean.ckpt").hparams.arch == "c3d"
    checkpoint = torch.load(tmp_path / "clean.ckpt", weights_only=True)
    checkpoint["hyper_parameters"]["extra"] = Payload()
    torch.save(checkpoint, tmp_path / "evil.ckpt")
    with pytest.raises(ValueError, match="refused"):
        load_classifier(tmp_path / "evil.ckpt")
    torch.save({"conv1.conv.weight": torch.zeros(1), "hook": Payload()}, tmp_path / "evil.pth")
    with pytest.raises(ValueError, match="refused"):
        load_weights(tmp_path / "evil.pth")


def test_fused_i3d_evaluation_averages_the_two_streams():
    from vidbench.models.weights import fuse_i3d_streams

    names = ["a", "b", "c"]
    rgb = VideoClassifier(
        "i3d", 3, names, model_options={"width": 0.125, "modalities": ("rgb",)}
    ).eval()
    flow = VideoClassifier(
        "i3d", 3, names, model_options={"width": 0.125, "modalities": ("flow",)}
    ).eval()
    fused = fuse_i3d_streams(rgb, flow).eval()
    batch = {"rgb": torch.randn(2, 3, 8, 64, 64), "flow": torch.randn(2, 2, 8, 64, 64)}
    with torch.no_grad():
        assert torch.allclose(fused(batch), (rgb(batch) + flow(batch)) / 2, atol=1e-6)
    with pytest.raises(ValueError, match="flow checkpoint must be an i3d flow-only stream"):
        fuse_i3d_streams(rgb, rgb)


def test_fused_i3d_takes_its_flow_settings_from_the_flow_stream():
    from vidbench.models.weights import fuse_i3d_streams

    geometry = {"fps": 25.0, "short_side": 56, "crop_size": 48, "clip_len": 8, "frame_interval": 1}
    rgb_prep = {**geometry, "flow_algorithm": "tvl1", "flow_bound": 20.0, "flow_stack": 1}
    flow_prep = {**geometry, "flow_algorithm": "farneback", "flow_bound": 15.0, "flow_stack": 2}

    def stream(modality: str, prep: dict) -> VideoClassifier:
        options = {"width": 0.125, "modalities": (modality,)}
        prep = {**prep, "modalities": [modality]}
        return VideoClassifier("i3d", 3, ["a", "b", "c"], options, preprocessing=prep)

    fused = fuse_i3d_streams(stream("rgb", rgb_prep), stream("flow", flow_prep))
    prep = fused.hparams.preprocessing
    flow_settings = (prep["flow_algorithm"], prep["flow_bound"], prep["flow_stack"])
    assert flow_settings == ("farneback", 15.0, 2)
    assert prep["modalities"] == ["rgb", "flow"] and prep["crop_size"] == 48
    with pytest.raises(ValueError, match="different clips: clip_len 8 vs 16"):
        fuse_i3d_streams(stream("rgb", rgb_prep), stream("flow", {**flow_prep, "clip_len": 16}))


def test_models_command_lists_every_architecture_as_json(capsys):
    import json

    assert main(["models", "--json"]) == 0
    rows = {row["name"]: row for row in json.loads(capsys.readouterr().out)}
    assert {name.split("[")[0] for name in rows} == set(list_models())
    assert (
        rows["i3d"]["gmacs"] == pytest.approx(111, rel=0.03) and rows["r3d"]["params"] == 33_371_472
    )
    assert all({"name", "params", "gmacs"} <= set(row) for row in rows.values())


def test_fixed_protocol_from_a_pretrained_checkpoint_keeps_its_features(tmp_path):
    source = VideoClassifier("c3d", 6, model_options={"width": 0.125})
    save_checkpoint(source, tmp_path / "kinetics_like.ckpt")
    target = VideoClassifier(
        "c3d",
        3,
        model_options={"width": 0.125},
        protocol="fixed",
        init_checkpoint=str(tmp_path / "kinetics_like.ckpt"),
    )
    conv = "features.0.0.weight"
    assert torch.equal(target.net.state_dict()[conv], source.net.state_dict()[conv])
    assert target.net.classifier[2].out_features == 3  # a fresh head for the new classes
    assert [n for n, p in target.net.named_parameters() if p.requires_grad] == [
        "classifier.2.weight",
        "classifier.2.bias",
    ]
    with pytest.raises(ValueError, match="no weights fit architecture 'r3d'"):
        VideoClassifier(
            "r3d",
            3,
            model_options={"width": 0.125},
            init_checkpoint=str(tmp_path / "kinetics_like.ckpt"),
        )


def test_top5_is_not_merged_into_top1_when_a_first_batch_agrees():
    from vidbench.models.classifier import accuracy_metrics

    metrics = accuracy_metrics(4)
    metrics.update(torch.tensor([[5.0, 1, 0, 0]] * 2), torch.tensor([0, 0]))  # both right
    metrics.update(torch.tensor([[5.0, 1, 0, 0]] * 2), torch.tensor([1, 2]))  # in the top 5
    result = metrics.compute()
    assert result["top1"] == 0.5 and result["top5"] == 1.0
    assert result["mean_class"] == pytest.approx(1 / 3)  # classes 0, 1, 2 present: 1, 0, 0


def test_plateau_divides_the_learning_rate_by_ten_when_validation_loss_stalls(grouped):
    dm = tiny_datamodule(grouped, clip_len=4, batch_size=8, val_holdout=0.3)
    module = VideoClassifier(
        "c3d",
        dm.num_classes,
        dm.class_names,
        model_options={"width": 0.125},
        lr=0.01,
        scheduler="plateau",
        plateau_patience=0,
        plateau_threshold=10.0,  # nothing improves
    )
    trainer = quiet_trainer(max_epochs=3, limit_train_batches=1, limit_val_batches=1)
    trainer.fit(module, datamodule=dm)
    # no loss beats "best x (1 - 10)": each of the 3 validations is a stall, each a cut
    assert trainer.optimizers[0].param_groups[0]["lr"] == pytest.approx(0.01 / 1000)


def test_piecewise_schedule_sets_the_learning_rate_by_step():
    from vidbench.models.classifier import piecewise_lr

    schedule = [[0, 0.1], [97000, 0.01], [104500, 0.001], [115000, 0.1]]  # DM's flow stream
    assert [piecewise_lr(schedule, s) for s in (0, 96999, 97000, 110000, 115000)] == [
        0.1, 0.1, 0.01, 0.001, 0.1,
    ]  # fmt: skip
    module = VideoClassifier(
        "c3d",
        2,
        model_options={"width": 0.125},
        lr=0.1,
        scheduler="piecewise",
        lr_schedule=[[0, 0.1], [2, 0.01]],
    )
    configured = module.configure_optimizers()
    optimizer, schedule = configured["optimizer"], configured["lr_scheduler"]["scheduler"]
    rates = []
    for _ in range(4):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        schedule.step()
    assert rates == pytest.approx([0.1, 0.1, 0.01, 0.01])


def test_fixed_protocol_keeps_batchnorm_statistics_through_lightning_fit(tmp_path):
    """Lightning (2.2+) does not call `train()` when fitting starts, so the frozen BatchNorm
    must hold from construction: a fit leaves every statistic as it was."""
    import pytorch_lightning as pl

    module = VideoClassifier("c3d", 4, model_options={"width": 0.125}, protocol="fixed")
    before = {k: v.clone() for k, v in module.net.state_dict().items() if "running" in k}
    head = module.net.classifier[2].weight.detach().clone()
    clips = torch.randn(8, 3, 8, 32, 32) * 3 + 1  # statistics far from the stored ones
    batches = [{"rgb": clips[i : i + 4], "label": torch.arange(4)} for i in (0, 4)]
    trainer = pl.Trainer(
        max_steps=2,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
    )
    trainer.fit(module, train_dataloaders=torch.utils.data.DataLoader(batches, batch_size=None))
    after = module.net.state_dict()
    assert before and all(torch.equal(v, after[k]) for k, v in before.items())
    assert not torch.equal(module.net.classifier[2].weight, head)  # the last layer trained


@pytest.mark.parametrize("scheduler", ["cosine", "none"])
def test_warmup_rises_linearly_then_follows_the_schedule(tmp_path, scheduler):
    import pytorch_lightning as pl

    class Rates(pl.Callback):
        def __init__(self):
            self.seen = []

        def on_train_batch_start(self, trainer, *args):
            self.seen.append(trainer.optimizers[0].param_groups[0]["lr"])

    module = VideoClassifier(
        "c3d",
        4,
        model_options={"width": 0.125},
        optimizer="adamw",
        lr=0.01,
        scheduler=scheduler,
        warmup_steps=4,
    )
    batch = {"rgb": torch.randn(2, 3, 8, 32, 32), "label": torch.tensor([0, 1])}
    rates = Rates()
    trainer = pl.Trainer(
        max_steps=8,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
        callbacks=[rates],
    )
    trainer.fit(module, train_dataloaders=torch.utils.data.DataLoader([batch] * 8, batch_size=None))
    rising = [0.0025, 0.005, 0.0075, 0.01]
    if scheduler == "cosine":  # then down over the 4 steps left, from the peak
        after = [0.01 * 0.5 * (1 + math.cos(math.pi * k / 4)) for k in range(4)]
    else:
        after = [0.01] * 4
    assert rates.seen == pytest.approx(rising + after)
    with pytest.raises(ValueError, match="warmup_steps goes with scheduler"):
        VideoClassifier("c3d", 4, scheduler="step", warmup_steps=4)


def test_sweep_warmup_is_checked_and_only_hashed_when_set():
    from helpers import finished_record

    from vidbench.bench.config import TrainConfig

    with pytest.raises(
        ValueError, match="warmup_steps goes with scheduler none or cosine, not step"
    ):
        TrainConfig(scheduler="step", warmup_steps=10)
    with pytest.raises(ValueError, match="warmup_steps 100 must be fewer than max_steps 100"):
        TrainConfig(scheduler="cosine", warmup_steps=100, max_steps=100)
    cell = finished_record("c3d-rgb-d1-scratch-s0", 50.0).config
    warm = cell.model_copy(update={"train": cell.train.model_copy(update={"warmup_steps": 5})})
    unchanged = cell.model_copy(update={"train": cell.train.model_copy(update={"warmup_steps": 0})})
    assert unchanged.hash() == cell.hash() != warm.hash()
