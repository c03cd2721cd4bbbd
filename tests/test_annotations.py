"""Annotation parsers on fixture files written in the official formats, quirks included."""

from __future__ import annotations

import json

import pytest

from vidbench.datasets.annotations import UNLABELLED, AnnotationError, load_annotations
from vidbench.datasets.index import locate_videos


def write_crlf(path, lines):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode())


@pytest.fixture
def ucf_lists(tmp_path):
    folder = tmp_path / "ucfTrainTestlist"
    write_crlf(folder / "classInd.txt", ["1 ApplyEyeMakeup", "2 HandstandPushups", "3 YoYo"])
    write_crlf(
        folder / "trainlist01.txt",
        [
            "ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi 1",
            "HandstandPushups/v_HandStandPushups_g09_c02.avi 2",
            "YoYo/v_YoYo_g10_c01.avi 3",
        ],
    )
    write_crlf(
        folder / "testlist01.txt",
        [
            "ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi",
            "HandstandPushups/v_HandStandPushups_g01_c01.avi",
            "YoYo/v_YoYo_g02_c03.avi",
        ],
    )
    write_crlf(folder / "trainlist02.txt", ["YoYo/v_YoYo_g01_c01.avi 3"])
    write_crlf(folder / "testlist02.txt", ["ApplyEyeMakeup/v_ApplyEyeMakeup_g10_c01.avi"])
    return folder


def test_ucf101_labels_from_classind_with_crlf_and_case_mismatch(ucf_lists):
    parsed = load_annotations("ucf101", ucf_lists, fold=1)
    assert parsed.class_names == ["ApplyEyeMakeup", "HandstandPushups", "YoYo"]
    train, test = parsed.splits["train"], parsed.splits["test"]
    assert [r.label for r in train] == [0, 1, 2]
    assert [r.label for r in test] == [0, 1, 2]  # from the folder name, case-insensitively
    assert test[1].path == "HandstandPushups/v_HandStandPushups_g01_c01.avi"
    assert test[1].video_id == "v_HandStandPushups_g01_c01"
    assert not any("\r" in r.path for r in train + test)


def test_ucf101_fold_selects_its_lists(ucf_lists):
    parsed = load_annotations("ucf101", ucf_lists, fold=2)
    assert [r.video_id for r in parsed.splits["train"]] == ["v_YoYo_g01_c01"]
    assert [r.label for r in parsed.splits["test"]] == [0]
    with pytest.raises(ValueError, match="folds 1, 2 and 3"):
        load_annotations("ucf101", ucf_lists, fold=4)


def test_ucf101_labels_follow_classind_not_sorted_folders(tmp_path):
    folder = tmp_path / "lists"
    write_crlf(folder / "classInd.txt", ["1 Zebra", "2 Apple"])
    write_crlf(folder / "trainlist01.txt", ["Zebra/v_Zebra_g02_c01.avi 1"])
    write_crlf(
        folder / "testlist01.txt", ["Apple/v_Apple_g01_c01.avi", "Zebra/v_Zebra_g01_c01.avi"]
    )
    parsed = load_annotations("ucf101", folder)
    assert [r.label for r in parsed.splits["test"]] == [1, 0]


@pytest.mark.parametrize(
    "line", ["../outside/v_x_g01_c01.avi 1", "/etc/passwd 1", "a/../../b.avi 1"]
)
def test_path_outside_the_video_root_is_rejected_naming_the_line(ucf_lists, line):
    write_crlf(ucf_lists / "trainlist01.txt", ["YoYo/v_YoYo_g10_c01.avi 3", line])
    with pytest.raises(AnnotationError, match=r"trainlist01\.txt:2: .*outside the video root"):
        load_annotations("ucf101", ucf_lists)


def test_ucf101_bad_label_names_file_and_line(ucf_lists):
    write_crlf(ucf_lists / "trainlist01.txt", ["YoYo/v_YoYo_g10_c01.avi 7"])
    with pytest.raises(AnnotationError, match=r"trainlist01\.txt:1: label '7' is not in 1\.\.3"):
        load_annotations("ucf101", ucf_lists)


def test_hmdb51_ids_trailing_spaces_and_sorted_classes(tmp_path):
    folder = tmp_path / "testTrainMulti_7030_splits"
    folder.mkdir()
    (folder / "ride_bike_test_split1.txt").write_text("a.avi 1 \nb.avi 2 \nc.avi 0 \n")
    (folder / "brush_hair_test_split1.txt").write_text("d.avi 2 \ne.avi 1 \n")
    (folder / "brush_hair_test_split2.txt").write_text("d.avi 1 \ne.avi 2 \n")
    parsed = load_annotations("hmdb51", folder, fold=1)
    assert parsed.class_names == ["brush_hair", "ride_bike"]
    assert [(r.path, r.label) for r in parsed.splits["train"]] == [
        ("brush_hair/e.avi", 0),
        ("ride_bike/a.avi", 1),
    ]
    assert [(r.path, r.label) for r in parsed.splits["test"]] == [
        ("brush_hair/d.avi", 0),
        ("ride_bike/b.avi", 1),
    ]
    (folder / "ride_bike_test_split1.txt").write_text("a.avi 3 \n")
    with pytest.raises(AnnotationError, match=r"ride_bike_test_split1\.txt:1"):
        load_annotations("hmdb51", folder, fold=1)


def test_kinetics_csv_variants_share_one_sorted_class_index(tmp_path):
    folder = tmp_path / "kinetics400"
    folder.mkdir()
    (folder / "train.csv").write_text(
        "label,youtube_id,time_start,time_end,split,is_cc\n"
        '"zumba",abc123DEF_-,10,20,train,0\n'
        '"passing American football (in game)",xyz,0,10,train,1\n'
    )
    (folder / "validate.csv").write_text(
        "label,youtube_id,time_start,time_end,split\nabseiling,q-Q_q,31,41,validate\n"
    )
    (folder / "test.csv").write_text("youtube_id,time_start,time_end,split\nTTT,5,15,test\n")
    parsed = load_annotations("kinetics400", folder)
    assert parsed.class_names == ["abseiling", "passing American football (in game)", "zumba"]
    assert [(r.path, r.label) for r in parsed.splits["train"]] == [
        ("abc123DEF_-_000010_000020", 2),
        ("xyz_000000_000010", 1),
    ]
    assert parsed.splits["val"][0].label == 0
    assert parsed.splits["test"][0].label == UNLABELLED


def test_kinetics_json_release(tmp_path):
    file = tmp_path / "kinetics_val.json"
    file.write_text(
        json.dumps(
            {
                "aaa": {
                    "annotations": {"label": "yoga", "segment": [84.0, 94.0]},
                    "duration": 10.0,
                    "subset": "validate",
                },
                "bbb": {
                    "annotations": {"label": "archery", "segment": [0.0, 10.0]},
                    "duration": 10.0,
                    "subset": "train",
                },
            }
        )
    )
    parsed = load_annotations("kinetics600", file)
    assert parsed.class_names == ["archery", "yoga"]
    assert parsed.splits["val"][0].path == "aaa_000084_000094"
    assert parsed.splits["train"][0].label == 0


def test_kinetics_bad_split_value_names_the_line(tmp_path):
    file = tmp_path / "k.csv"
    file.write_text("label,youtube_id,time_start,time_end,split\nyoga,a,0,10,holdout\n")
    with pytest.raises(AnnotationError, match=r"k\.csv:2: split 'holdout'"):
        load_annotations("kinetics700", file)


def test_locate_kinetics_clips_flat_or_in_class_folders(tmp_path):
    file = tmp_path / "k.csv"
    file.write_text(
        "label,youtube_id,time_start,time_end,split\nyoga,a,0,10,train\narchery,b,5,15,train\n"
        "archery,gone,5,15,train\n"
    )
    videos = tmp_path / "videos"
    (videos / "archery").mkdir(parents=True)
    (videos / "a_000000_000010.mp4").write_bytes(b"x")
    (videos / "archery" / "b_000005_000015.mkv").write_bytes(b"x")
    records = load_annotations("kinetics400", file).splits["train"]
    found = locate_videos(records, videos)
    assert found == [
        videos / "a_000000_000010.mp4",
        videos / "archery" / "b_000005_000015.mkv",
        None,
    ]
    (videos / "gone.mp4").write_bytes(b"x")  # a copy that names clips by YouTube id alone
    assert locate_videos(records, videos)[2] == videos / "gone.mp4"


def test_data_check_counts_kinetics_files_that_match_no_entry(tmp_path, capsys):
    from helpers import cli, moving_video

    file = tmp_path / "k.csv"
    file.write_text("label,youtube_id,time_start,time_end,split\nyoga,a_b-c,0,10,train\n")
    videos = tmp_path / "videos"
    moving_video(videos / "yoga" / "a_b-c.mp4", frames=4)  # found by its YouTube id
    moving_video(videos / "yoga" / "a_b-c_0_10.mp4", frames=4)  # a naming nothing matches
    args = ("data", "check", "--dataset", "kinetics400", "--annotations", str(file))
    assert cli(*args, "--videos", str(videos), "--no-progress") == 0
    report = capsys.readouterr().out
    assert "1 video files under the video folder match no annotation entry" in report
    assert "first: yoga/a_b-c_0_10.mp4" in report and "<youtube_id>.<ext>" in report


def test_locate_ucf_path_whose_case_differs_on_disk(tmp_path, ucf_lists):
    videos = tmp_path / "UCF-101"
    (videos / "handstandpushups").mkdir(parents=True)
    (videos / "handstandpushups" / "v_HandStandPushups_g01_c01.avi").write_bytes(b"x")
    records = load_annotations("ucf101", ucf_lists).splits["test"]
    assert (
        locate_videos(records, videos)[1]
        == videos / "handstandpushups" / "v_HandStandPushups_g01_c01.avi"
    )


def test_folder_format_with_and_without_split_folders(tmp_path):
    for rel in ("train/cat/1.mp4", "train/dog/2.avi", "val/dog/3.mp4", "val/dog/readme.txt"):
        (tmp_path / "split" / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "split" / rel).write_bytes(b"x")
    parsed = load_annotations("folder", tmp_path / "split")
    assert parsed.class_names == ["cat", "dog"]
    assert [(r.path, r.label) for r in parsed.splits["train"]] == [
        ("train/cat/1.mp4", 0),
        ("train/dog/2.avi", 1),
    ]
    assert [r.path for r in parsed.splits["val"]] == ["val/dog/3.mp4"]
    flat = load_annotations("folder", tmp_path / "split" / "train")
    assert list(flat.splits) == ["train", "val"]
    assert sorted(r.path for s in flat.splits.values() for r in s) == ["cat/1.mp4", "dog/2.avi"]


def test_a_flat_folder_of_class_folders_is_split_into_train_and_val(tmp_path):
    """Without train/val/test folders about a fifth of each class is held out for `val`,
    chosen by path (adding a video moves no other), each class in both splits."""
    for name in ("a", "b", "c"):
        for i in range(10):
            (tmp_path / name / f"{i}.mp4").parent.mkdir(exist_ok=True)
            (tmp_path / name / f"{i}.mp4").write_bytes(b"x")
    parsed = load_annotations("folder", tmp_path)
    train, val = parsed.splits["train"], parsed.splits["val"]
    assert len(train) + len(val) == 30 and not {r.path for r in train} & {r.path for r in val}
    assert {r.label for r in val} == {r.label for r in train} == {0, 1, 2}
    assert 3 <= len(val) <= 12  # about 20% of 30
    (tmp_path / "a" / "new.mp4").write_bytes(b"x")
    again = load_annotations("folder", tmp_path).splits
    assert {r.path for r in val} <= {r.path for r in again["val"]}
    assert {r.path for r in train} <= {r.path for r in again["train"]}


def test_path_label_list_with_names_or_integers(tmp_path):
    (tmp_path / "train.txt").write_text("clips/my video.mp4 jump\nclips/b.mp4 run\n")
    parsed = load_annotations("folder", tmp_path / "train.txt")
    assert parsed.class_names == ["jump", "run"]
    assert [(r.path, r.label) for r in parsed.splits["train"]] == [
        ("clips/my video.mp4", 0),
        ("clips/b.mp4", 1),
    ]
    (tmp_path / "classes.txt").write_text("run\njump\n")
    (tmp_path / "test.txt").write_text("a.mp4 1\nb.mp4 run\n")
    parsed = load_annotations("folder", tmp_path / "test.txt")
    assert [r.label for r in parsed.splits["test"]] == [1, 0]
    (tmp_path / "test.txt").write_text("a.mp4 fly\n")
    with pytest.raises(AnnotationError, match=r"test\.txt:1: label 'fly'"):
        load_annotations("folder", tmp_path / "test.txt")


def test_unknown_dataset_and_missing_path(tmp_path):
    with pytest.raises(ValueError, match="choose one of ucf101"):
        load_annotations("sports1m", tmp_path)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_annotations("ucf101", tmp_path / "nope")
