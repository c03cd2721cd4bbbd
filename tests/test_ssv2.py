"""Something-Something V2: its JSON annotations, VP9 .webm videos on both decoders, the
flip off by default, and the `ssv2` sweep."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from conftest import counting_frames, frame_index_of

from vidbench.bench.cli import main
from vidbench.datasets.annotations import (
    UNLABELLED,
    AnnotationError,
    flips_by_default,
    load_annotations,
)
from vidbench.datasets.clip_spec import ClipSpec
from vidbench.datasets.datamodule import VideoDataModule
from vidbench.datasets.decoders import open_video, read_frames
from vidbench.datasets.video_writer import write_video

CLASSES = {  # labels.json: the template without brackets -> its index (a string, as shipped)
    "Holding something": "0",
    "Pushing something from left to right": "1",
    "Pushing something from right to left": "2",
}
TRAIN = [
    ("101", "Pushing [something] from left to right", "pushing cup from left to right"),
    ("102", "Pushing [something] from right to left", "pushing pen from right to left"),
    ("103", "Holding [something]", "holding a book"),
    ("104", "Pushing [something] from left to right", "pushing box from left to right"),
]
VALIDATION = [
    ("201", "Holding [something]", "holding keys"),
    ("202", "Pushing [something] from right to left", "pushing mug from right to left"),
]
TEST = ["301", "302"]


def write_ssv2(root: Path, videos: bool = False) -> Path:
    """An SSv2 copy as downloaded: the four JSON files in `annotations/` and, with
    `videos`, a VP9 `<id>.webm` for every id in `videos/`."""
    folder = root / "annotations"
    folder.mkdir(parents=True)
    (folder / "labels.json").write_text(json.dumps(CLASSES))
    for name, rows in (("train.json", TRAIN), ("validation.json", VALIDATION)):
        entries = [
            {"id": i, "template": t, "label": label, "placeholders": ["x"]} for i, t, label in rows
        ]
        (folder / name).write_text(json.dumps(entries))
    (folder / "test.json").write_text(json.dumps([{"id": i} for i in TEST]))
    if videos:
        for video_id in [r[0] for r in TRAIN + VALIDATION] + TEST:
            write_video(root / "videos" / f"{video_id}.webm", counting_frames(24), 12)
    return folder


def test_the_four_json_files_give_classes_labels_and_an_unlabelled_test_split(tmp_path):
    parsed = load_annotations("ssv2", write_ssv2(tmp_path))
    assert parsed.class_names == list(CLASSES)
    train = {r.video_id: r for r in parsed.splits["train"]}
    assert train["101"].path == "101.webm"
    assert train["101"].label == 1 and train["102"].label == 2 and train["103"].label == 0
    assert [r.label for r in parsed.splits["val"]] == [0, 2]
    assert [(r.path, r.label) for r in parsed.splits["test"]] == [
        ("301.webm", UNLABELLED),
        ("302.webm", UNLABELLED),
    ]
    # labels.json itself may be given instead of its folder
    assert load_annotations("ssv2", tmp_path / "annotations" / "labels.json").num_classes == 3


def test_ssv2_errors_name_the_file_the_entry_and_the_closest_class(tmp_path):
    folder = write_ssv2(tmp_path)
    rows = json.loads((folder / "train.json").read_text())
    rows[2]["template"] = "Holding [something] tightly"
    (folder / "train.json").write_text(json.dumps(rows))
    with pytest.raises(AnnotationError, match=r"train\.json: entry 2: template .*closest"):
        load_annotations("ssv2", folder)
    (folder / "validation.json").write_text("[{")
    (folder / "train.json").write_text(json.dumps(rows[:2]))
    with pytest.raises(AnnotationError, match=r"validation\.json: not valid JSON"):
        load_annotations("ssv2", folder)
    (folder / "validation.json").unlink()
    with pytest.raises(AnnotationError, match=r"validation\.json: missing"):
        load_annotations("ssv2", folder)
    (folder / "labels.json").write_text(json.dumps({"a": "0", "b": "2"}))
    with pytest.raises(AnnotationError, match=r"labels\.json: class indices are not 0\.\.1"):
        load_annotations("ssv2", folder)


@pytest.mark.parametrize("backend", ["decord", "pyav"])
def test_vp9_webm_files_decode_frame_exact_on_both_backends(tmp_path, backend):
    path = tmp_path / "clip.webm"
    write_video(path, counting_frames(30), 12)
    with open(path, "rb") as file:
        assert file.read(4) == b"\x1a\x45\xdf\xa3"  # a Matroska/WebM container
    video = open_video(path, backend)
    assert video.num_frames == 30 and video.fps == pytest.approx(12)
    indices = np.array([0, 7, 8, 29, 3])
    assert frame_index_of(read_frames(video, indices)).tolist() == indices.tolist()


def test_ssv2_is_not_flipped_unless_asked_and_reads_its_webm_videos(tmp_path):
    write_ssv2(tmp_path, videos=True)
    assert not flips_by_default("ssv2") and flips_by_default("ucf101")
    spec = ClipSpec(clip_len=4, crop_size=32, short_side=40, fps=12)
    common = dict(num_workers=0, batch_size=2, test_split="val")
    dm = VideoDataModule("ssv2", tmp_path / "videos", tmp_path / "annotations", spec, **common)
    assert dm.hparams.flip is False and dm.split_for("test") == "val"
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    assert tuple(batch["rgb"].shape) == (2, 4, 32, 32, 3)  # uint8 (B, T, H, W, C) from .webm
    assert not bool(batch["flip"].any())  # never mirrored
    asked = VideoDataModule(
        "ssv2", tmp_path / "videos", tmp_path / "annotations", spec, flip=True, **common
    )
    assert asked.hparams.flip is True


def ssv2_cells(capsys, *overrides: str) -> list[dict]:
    capsys.readouterr()
    code = main(["run", "ssv2", "--dry-run", "--out", "/nonexistent/out", *overrides])
    printed = capsys.readouterr().out
    assert code == 1 and "# preflight PROBLEM: datasets.ssv2.videos" in printed  # no data here
    return [cell for cell in yaml.safe_load_all(printed) if cell]


def test_the_ssv2_sweep_resolves_every_architecture_unflipped_on_its_paper_input(capsys):
    cells = ssv2_cells(capsys)
    assert {c["arch"] for c in cells} == {
        "convnet_lstm",
        "c3d",
        "two_stream",
        "fused_two_stream",
        "i3d",
    }
    for cell in cells:
        assert cell["data"]["format"] == "ssv2" and cell["data"]["test_split"] == "val"
        assert cell["flip"] is False
        assert cell["train"]["val_every_epochs"] == 0  # no decision on the split tested on
    c3d = next(c for c in cells if c["arch"] == "c3d")
    assert (c3d["input"]["clip_len"], c3d["input"]["crop_size"]) == (16, 112)
    i3d = next(c for c in cells if c["arch"] == "i3d" and c["modality"] == "rgb")
    assert (i3d["input"]["clip_len"], i3d["input"]["crop_size"]) == (64, 224)
    assert all(c["flip"] is True for c in ssv2_cells(capsys, "--set", "input.flip=true"))
