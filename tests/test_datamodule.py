"""VideoDataModule on the synthetic dataset, inside a real Lightning Trainer."""

from __future__ import annotations

import json
import shutil

import pytest
import pytorch_lightning as pl
import torch
from helpers import quiet_trainer, tiny_datamodule
from torch import nn

from vidbench.datasets import TooManyBadVideos, VideoDataModule
from vidbench.datasets.annotations import VideoRecord, hold_out, video_group
from vidbench.datasets.clip_spec import ClipSpec


@pytest.fixture
def synth_copy(synth_dataset, tmp_path):
    """A private copy of the synthetic dataset that a test may break."""
    return shutil.copytree(synth_dataset, tmp_path / "synth")


class MeanColour(pl.LightningModule):
    """The smallest classifier that consumes the batch dict: enough to drive the loops."""

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.head = nn.Linear(3, num_classes)
        self.seen: dict[str, int] = {"train": 0, "val": 0, "test": 0}

    def step(self, batch, stage):
        if "rgb" not in batch:  # every video of the batch failed
            return None
        self.seen[stage] += len(batch["label"])
        rgb = batch["rgb"]  # converted on the device by the data module's hook
        assert (
            rgb.dtype == torch.float32 and rgb.shape[1] == 3 and -1 <= rgb.min() <= rgb.max() <= 1
        )
        loss = nn.functional.cross_entropy(
            self.head(batch["rgb"].mean(dim=(2, 3, 4))), batch["label"]
        )
        self.log(f"{stage}_loss", loss, batch_size=len(batch["label"]))
        return loss

    def training_step(self, batch, _):
        return self.step(batch, "train")

    def validation_step(self, batch, _):
        self.step(batch, "val")

    def test_step(self, batch, _):
        self.step(batch, "test")

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1, momentum=0.9)


def test_exposes_classes_and_batches(synth_dataset):
    dm = tiny_datamodule(synth_dataset, test_clips=2, test_crops=3)
    assert dm.num_classes == 8 and dm.class_names[:2] == ["MoveRight", "MoveLeft"]
    with pytest.raises(ValueError, match=r"give val_holdout .* read only for the final test"):
        dm.split_for("val")  # UCF-101 has no val split, and none is held out
    dm.setup("fit")  # trains; nothing validates
    batch = dm.to_device(next(iter(dm.train_dataloader())))
    assert batch["rgb"].shape == (4, 3, 4, 32, 32) and batch["label"].dtype == torch.int64
    assert "errors" not in batch
    dm.setup("test")
    assert len(dm.dataset("test")) == len(dm.annotations.splits["test"]) * 6


def test_loaders_keep_workers_and_pin_only_for_cuda(grouped):
    dm = tiny_datamodule(grouped, num_workers=1, prefetch_factor=3, val_holdout=0.5)
    for loader in (dm.train_dataloader(), dm.val_dataloader(), dm.test_dataloader()):
        assert loader.persistent_workers and loader.prefetch_factor == 3
        assert not loader.pin_memory  # no trainer on a CUDA device
    pinned = tiny_datamodule(grouped, num_workers=0, pin_memory=True)
    assert pinned.train_dataloader().pin_memory
    assert not pinned.train_dataloader().persistent_workers  # no workers to keep


def test_full_video_test_yields_whole_videos(synth_dataset):
    dm = tiny_datamodule(synth_dataset, full_video_test=True)
    dm.setup("test")
    batch = next(iter(dm.test_dataloader()))
    assert batch["rgb"].shape == (1, 40, 32, 32, 3)  # every frame of the 40-frame video


def test_trainer_counts_missing_and_broken_videos(synth_copy):
    videos = synth_copy / "videos"
    (videos / "MoveRight" / "v_MoveRight_g01_c01.avi").unlink()  # a test video: missing
    (videos / "MoveLeft" / "v_MoveLeft_g01_c02.avi").write_bytes(b"")  # a test video: empty
    broken = videos / "MoveUp" / "v_MoveUp_g02_c01.avi"  # a training video: truncated
    broken.write_bytes(broken.read_bytes()[:300])
    dm = tiny_datamodule(synth_copy, num_workers=2, max_bad_fraction=0.2)
    model = MeanColour(dm.num_classes)
    trainer = quiet_trainer(max_epochs=2, limit_val_batches=0)  # UCF-101: no val split
    pl.seed_everything(0, workers=True)
    trainer.fit(model, datamodule=dm)
    trainer.test(model, datamodule=dm, verbose=False)
    summary = dm.bad_videos.summary()
    n_test, n_train = len(dm.annotations.splits["test"]), len(dm.annotations.splits["train"])
    assert summary["test"] == {
        "expected": n_test,
        "found": n_test - 2,
        "missing": 1,
        "unreadable": 1,
        "substituted": 0,
    }
    assert summary["train"]["unreadable"] == 1 and summary["train"]["substituted"] >= 1
    assert summary["train"]["found"] == n_train - 1
    assert model.seen["test"] == n_test - 2  # the empty one excluded, nothing substituted
    assert model.seen["train"] == 2 * (n_train // 4) * 4  # every training batch full: substitutes


def test_too_many_bad_training_videos_stop_the_run(synth_copy):
    for video in list((synth_copy / "videos" / "MoveDown").glob("*g02*")):
        video.write_bytes(b"not a video")
    dm = tiny_datamodule(synth_copy, max_bad_fraction=0.01)
    trainer = quiet_trainer(max_epochs=1, limit_val_batches=0)
    with pytest.raises(TooManyBadVideos, match="MoveDown"):
        trainer.fit(MeanColour(dm.num_classes), datamodule=dm)


def test_for_model_feeds_what_the_model_declares_or_its_checkpoint_records(synth_dataset):
    from vidbench.models import VideoClassifier, create_model

    videos, annotations = synth_dataset / "videos", synth_dataset / "annotations"
    net = create_model("c3d", 8, width=0.125)
    dm = VideoDataModule.for_model(net, "ucf101", videos, annotations, batch_size=2)
    assert dm.spec == net.input_spec and dm.hparams.batch_size == 2
    trained = net.input_spec.replace(clip_len=8, crop_size=48, short_side=56)
    module = VideoClassifier(
        "c3d", 8, model_options={"width": 0.125}, preprocessing=trained.to_dict()
    )
    assert VideoDataModule.for_model(module, "ucf101", videos, annotations).spec == trained
    with pytest.raises(TypeError, match="declares no input_spec"):
        VideoDataModule.for_model(torch.nn.Linear(2, 2), "ucf101", videos, annotations)


def test_a_folder_of_class_folders_takes_one_path_and_trains_and_validates(synth_dataset, capsys):
    """`folder` format: the videos folder is the annotations too, and a flat folder of
    class folders gives train and val splits (was: everything `test`, "no train split")."""
    from vidbench.bench.cli import main

    videos = synth_dataset / "videos"  # MoveLeft/..., MoveRight/...: one folder per class
    dm = VideoDataModule(
        "folder",
        videos,
        None,
        ClipSpec(clip_len=4, crop_size=32, short_side=40),
        batch_size=4,
        num_workers=0,
    )
    assert dm.num_classes == 8 and dm.split_for("train") == "train"
    assert dm.split_for("val") == dm.split_for("test") == "val"
    train, val = (dm.annotations.splits[s] for s in ("train", "val"))
    assert len(train) + len(val) == 64 and {r.label for r in val} == set(range(8))
    dm.setup("fit")
    assert next(iter(dm.train_dataloader()))["rgb"].shape == (4, 4, 32, 32, 3)
    assert next(iter(dm.val_dataloader()))["label"].shape[0] >= 1
    with pytest.raises(ValueError, match="ucf101 needs annotation_path"):
        VideoDataModule("ucf101", videos, None, ClipSpec())

    assert (
        main(
            [
                "data",
                "check",
                "--dataset",
                "folder",
                "--videos",
                str(videos),
                "--json",
                "--no-progress",
            ]
        )
        == 0
    )
    splits = json.loads(capsys.readouterr().out)["splits"]
    assert splits["train"]["found"] + splits["val"]["found"] == 64
    with pytest.raises(SystemExit):  # the official formats still need their lists
        main(["data", "check", "--dataset", "ucf101", "--videos", str(videos)])
    assert "needs --annotations" in capsys.readouterr().err


def test_a_sweep_dataset_in_the_folder_format_needs_only_its_videos():
    from pydantic import ValidationError

    from vidbench.bench.config import DatasetConfig

    assert DatasetConfig(format="folder", videos="clips").annotations == "clips"
    with pytest.raises(ValidationError, match="annotations may be left out for the folder"):
        DatasetConfig(format="ucf101", videos="clips")


def test_validation_is_a_held_out_part_of_train_never_the_test_split(grouped):
    dm = tiny_datamodule(grouped, val_holdout=0.3)
    original = tiny_datamodule(grouped).annotations.splits
    train, val = dm.annotations.splits["train"], dm.annotations.splits["val"]
    assert val and sorted(train + val, key=str) == sorted(original["train"], key=str)
    assert dm.annotations.splits["test"] == original["test"]
    assert not {video_group(r) for r in train} & {video_group(r) for r in val}
    assert {r.label for r in train} == {r.label for r in val} == {0, 1}
    assert dm.split_for("val") == "val" and dm.split_for("test") == "test"
    assert dm.validation_source.startswith("30% of the train split's groups held out (")


def test_the_held_out_part_stays_put_when_videos_are_added(grouped):
    annotations = tiny_datamodule(grouped).annotations
    before, _ = hold_out(annotations, 0.3)
    grown = annotations.splits["train"] + [
        VideoRecord(f"MoveRight/v_MoveRight_g{g:02d}_c01.avi", 0, f"v_MoveRight_g{g:02d}_c01")
        for g in range(10, 30)  # twenty new groups
    ]
    annotations.splits["train"] = grown
    after, _ = hold_out(annotations, 0.3)
    held = {r.path for r in after.splits["val"]}
    for record in before.splits["train"] + before.splits["val"]:  # every video keeps its side
        assert (record.path in held) == (record in before.splits["val"]), record.path


def test_fitting_reads_no_test_video(grouped, monkeypatch):
    from vidbench.models import VideoClassifier

    dm = tiny_datamodule(grouped, val_holdout=0.3)

    def no_test(*args, **kwargs):
        raise AssertionError("the test loader was asked for during fit")

    monkeypatch.setattr(VideoDataModule, "test_dataloader", no_test)
    module = VideoClassifier(
        "c3d",
        2,
        dm.class_names,
        model_options={"width": 0.125},
        scheduler="plateau",
        plateau_patience=0,
    )
    trainer = quiet_trainer(max_epochs=2, check_val_every_n_epoch=1)
    trainer.fit(module, datamodule=dm)
    assert "val/loss" in trainer.logged_metrics  # the plateau rule had a validation to watch
    read = {record.path for data in dm._datasets.values() for _, record in data.videos}
    tested = {record.path for record in dm.annotations.splits["test"]}
    assert sorted(dm._datasets) == ["train", "val"] and read and not read & tested


def test_the_test_split_is_the_one_asked_for(grouped):
    assert tiny_datamodule(grouped, test_split="test").split_for("test") == "test"
    with pytest.raises(
        ValueError, match=r"test_split val: the ucf101 annotations' val split is absent"
    ):
        tiny_datamodule(grouped, test_split="val").split_for("test")
    held = tiny_datamodule(grouped, test_split="val", val_holdout=0.3)
    assert held.split_for("test") == "val"  # asked for: the held-out part (never cited)
