"""Annotation parsers: one pure function per official format.

Each parser reads annotation files (never videos) and returns an `Annotations`: the class
names in label order and, per split (`train`, `val`, `test`), a list of `VideoRecord`s.
Formats are described in docs/protocol.md section 4. Paths in records are relative to the video
root, POSIX-style; one that would resolve outside the root is rejected with the line at
fault.
"""

from __future__ import annotations

import csv
import difflib
import hashlib
import json
import logging
import posixpath
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from vidbench.datasets.files import walk_files

DATASETS = ("ucf101", "hmdb51", "kinetics400", "kinetics600", "kinetics700", "ssv2", "folder")
# formats whose classes name a direction ("Pushing something from left to right"), so a
# left-right flip would change the label: training clips are not mirrored unless asked
NOT_FLIPPED = ("ssv2",)
ENTRY_POINT_GROUP = "vidbench.datasets"  # formats from other packages
SPLITS = ("train", "val", "test")
VIDEO_EXTENSIONS = (".mp4", ".avi", ".mkv", ".webm", ".mov", ".m4v", ".mpg", ".mpeg")
UNLABELLED = -1
log = logging.getLogger(__name__)


class AnnotationError(ValueError):
    """An annotation file is malformed; the message names the file and line."""


@dataclass(frozen=True)
class VideoRecord:
    """One video of a split.

    path: relative to the video root (POSIX separators). For Kinetics it is the canonical
      clip name `<youtube_id>_<start:06d>_<end:06d>` without folder or extension, found on
      disk by `vidbench.datasets.index.locate_videos`.
    label: 0-based class index, or -1 (UNLABELLED) for an unlabelled test split.
    video_id: the file stem, unique within the dataset.
    """

    path: str
    label: int
    video_id: str


@dataclass
class Annotations:
    """Class names in label order; per split its videos; `notes`: what was dropped from
    the lists as given (duplicates, training videos also listed for evaluation), counted."""

    class_names: list[str]
    splits: dict[str, list[VideoRecord]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


def load_annotations(dataset: str, path: str | Path, fold: int = 1) -> Annotations:
    """Parse `path` (a file or folder) in the format of `dataset` (one of DATASETS)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"annotation path {str(path)!r} does not exist")
    if dataset == "ucf101":
        parsed = parse_ucf101(path, fold)
    elif dataset == "hmdb51":
        parsed = parse_hmdb51(path, fold)
    elif dataset.startswith("kinetics") and dataset in DATASETS:
        parsed = parse_kinetics(path)
    elif dataset == "ssv2":
        parsed = parse_ssv2(path)
    elif dataset == "folder":
        parsed = parse_folder(path) if path.is_dir() else parse_list(path)
    else:
        parsed = _plugin_parse(dataset, path, fold)
    return without_repeats(parsed, path)


def dataset_formats() -> tuple[str, ...]:
    """The built-in formats, then those installed packages add through the
    `vidbench.datasets` entry-point group (listed without importing them)."""
    added = {p.name for p in metadata.entry_points(group=ENTRY_POINT_GROUP)} - set(DATASETS)
    return (*DATASETS, *sorted(added))


def check_format(dataset: str) -> str:
    """`dataset` if it names a format, else ValueError with the choices and the closest."""
    formats = dataset_formats()
    if dataset not in formats:
        close = difflib.get_close_matches(dataset, formats, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ValueError(
            f"unknown dataset format {dataset!r}{hint}; choose one of {', '.join(formats)}"
        )
    return dataset


def flips_by_default(dataset: str) -> bool:
    """Whether training clips of format `dataset` are mirrored at random unless a sweep
    says otherwise: not for formats whose classes name directions (a plugin's parser says
    so with a `flip = False` attribute)."""
    if dataset in DATASETS:
        return dataset not in NOT_FLIPPED
    parser, _ = plugin_parser(dataset)
    return bool(getattr(parser, "flip", True))


def plugin_parser(dataset: str) -> tuple[Callable[[Path, int], Annotations], str]:
    """The parser a package registers for format `dataset` and that package's name and
    version; ValueError naming the package when it cannot be imported."""
    check_format(dataset)
    (point,) = [p for p in metadata.entry_points(group=ENTRY_POINT_GROUP) if p.name == dataset]
    package = f"{point.dist.name} {point.dist.version}" if point.dist else "unknown package"
    try:
        parser = point.load()
    except Exception as error:  # foreign code can raise anything on import
        raise ValueError(
            f"dataset format {dataset!r} of {package} ({point.value}) cannot be imported: "
            f"{type(error).__name__}: {error}"
        ) from None
    if not callable(parser):
        raise ValueError(f"dataset format {dataset!r} of {package}: {point.value} is not callable")
    return parser, package


def _plugin_parse(dataset: str, path: Path, fold: int) -> Annotations:
    parser, package = plugin_parser(dataset)
    parsed = parser(path, fold)
    if not isinstance(parsed, Annotations):
        raise AnnotationError(
            f"dataset format {dataset!r} of {package}: its parser returned "
            f"{type(parsed).__name__}, not vidbench.datasets.annotations.Annotations"
        )
    wrong = [s for s in parsed.splits if s not in SPLITS]
    if wrong:
        raise AnnotationError(f"dataset format {dataset!r}: splits {wrong} are not in {SPLITS}")
    return parsed


EVALUATED = ("val", "test")


def without_repeats(annotations: Annotations, where: Path) -> Annotations:
    """`annotations` with a video listed twice in a split kept once, and a training video
    also listed for evaluation kept out of training (never trained on what is tested);
    each warned about and counted in `notes`. The same video listed twice in a split with
    two labels is an AnnotationError naming it."""
    for split, records in annotations.splits.items():
        first: dict[str, VideoRecord] = {}
        for record in records:
            other = first.setdefault(record.path, record)
            if other.label != record.label:
                raise AnnotationError(
                    f"{where}: {record.path} is listed in {split} twice, with labels "
                    f"{other.label} and {record.label}"
                )
        if len(first) < len(records):
            _note(annotations, f"{split}: {len(records) - len(first)} repeated entries dropped")
            annotations.splits[split] = list(first.values())
    evaluated = {r.path for s in EVALUATED for r in annotations.splits.get(s, [])}
    train = annotations.splits.get("train", [])
    both = [r.path for r in train if r.path in evaluated]
    if both:
        _note(
            annotations,
            f"train: {len(both)} videos also listed for evaluation left out of training "
            f"(first: {', '.join(both[:3])})",
        )
        annotations.splits["train"] = [r for r in train if r.path not in evaluated]
    return annotations


def _note(annotations: Annotations, note: str) -> None:
    log.warning("annotations: %s", note)
    annotations.notes.append(note)


def safe_relative_path(raw: str, where: str) -> str:
    """Normalise `raw` to a POSIX path inside the video root, or raise naming `where`."""
    rel = posixpath.normpath(raw.strip().replace("\\", "/"))
    if rel.startswith("/") or rel == ".." or rel.startswith("../") or re.match(r"^[A-Za-z]:", rel):
        raise AnnotationError(f"{where}: path {raw.strip()!r} resolves outside the video root")
    return rel


def _lines(path: Path) -> Iterable[tuple[int, str]]:
    """Non-empty stripped lines with 1-based numbers; CRLF and BOMs are tolerated."""
    # surrogateescape: a file name that is not UTF-8 keeps its bytes, and so matches the disk
    text = path.read_text(encoding="utf-8-sig", errors="surrogateescape")
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            yield number, line.strip()


def _check_fold(fold: int, dataset: str) -> None:
    if fold not in (1, 2, 3):
        raise ValueError(f"{dataset} has folds 1, 2 and 3; got fold={fold!r}")


# --- UCF-101 ------------------------------------------------------------------------------

SPLIT_LISTS = (("train", "trainlist"), ("test", "testlist"))


def parse_ucf101(folder: Path, fold: int = 1) -> Annotations:
    """UCF-101 `ucfTrainTestlist/`: classInd.txt, trainlist0N.txt, testlist0N.txt.

    Labels come from classInd.txt. Train lines carry a 1-based label; test lines take it
    from the folder name, matched case-insensitively (real files disagree in case).
    """
    _check_fold(fold, "ucf101")
    class_file = folder / "classInd.txt"
    if not class_file.is_file():
        raise FileNotFoundError(f"UCF-101 annotations need {class_file} (1-based index, name)")
    names: dict[int, str] = {}
    for number, line in _lines(class_file):
        parts = line.split()
        if len(parts) != 2 or not parts[0].isdigit():
            raise AnnotationError(f"{class_file}:{number}: expected '<index> <ClassName>'")
        names[int(parts[0])] = parts[1]
    if sorted(names) != list(range(1, len(names) + 1)):
        raise AnnotationError(f"{class_file}: indices must run 1..{len(names)} without gaps")
    class_names = [names[i] for i in range(1, len(names) + 1)]
    by_lower = {name.lower(): i for i, name in enumerate(class_names)}

    lists = {split: folder / f"{stem}{fold:02d}.txt" for split, stem in SPLIT_LISTS}
    absent = [path.name for path in lists.values() if not path.is_file()]
    if absent:
        raise FileNotFoundError(
            f"{folder}: no {' or '.join(absent)}; UCF-101 split {fold} needs both "
            f"trainlist{fold:02d}.txt and testlist{fold:02d}.txt"
        )
    splits: dict[str, list[VideoRecord]] = {}
    for split, list_file in lists.items():
        records = []
        for number, line in _lines(list_file):
            where = f"{list_file}:{number}"
            parts = line.split()
            rel = safe_relative_path(parts[0], where)
            folder_name = rel.split("/")[0].lower()
            if len(parts) >= 2:
                if not parts[1].isdigit() or not 1 <= int(parts[1]) <= len(class_names):
                    raise AnnotationError(
                        f"{where}: label {parts[1]!r} is not in 1..{len(class_names)}"
                    )
                label = int(parts[1]) - 1
            elif folder_name in by_lower:
                label = by_lower[folder_name]
            else:
                raise AnnotationError(f"{where}: folder {folder_name!r} is not in {class_file}")
            records.append(VideoRecord(rel, label, posixpath.splitext(posixpath.basename(rel))[0]))
        splits[split] = records
    return Annotations(class_names, splits)


# --- HMDB-51 ------------------------------------------------------------------------------

_HMDB_FILE = re.compile(r"^(?P<cls>.+)_test_split(?P<fold>[123])\.txt$")
_HMDB_SPLIT_IDS = {"1": "train", "2": "test"}  # 0 = unused in this fold


def parse_hmdb51(folder: Path, fold: int = 1) -> Annotations:
    """HMDB-51 `testTrainMulti_7030_splits/<class>_test_split{1,2,3}.txt`.

    Lines are `<video>.avi <id> ` with id 1 = train, 2 = test, 0 = unused. Classes are
    sorted by name; videos live at `<class>/<video>.avi`.
    """
    _check_fold(fold, "hmdb51")
    files = {}
    for file in sorted(folder.iterdir()):
        match = _HMDB_FILE.match(file.name)
        if match and int(match["fold"]) == fold:
            files[match["cls"]] = file
    if not files:
        raise FileNotFoundError(f"no '<class>_test_split{fold}.txt' files in {folder}")
    class_names = sorted(files)
    splits: dict[str, list[VideoRecord]] = {"train": [], "test": []}
    for label, name in enumerate(class_names):
        for number, line in _lines(files[name]):
            parts = line.split()
            where = f"{files[name]}:{number}"
            if len(parts) != 2 or parts[1] not in ("0", "1", "2"):
                raise AnnotationError(f"{where}: expected '<video>.avi <0|1|2>', got {line!r}")
            if parts[1] == "0":
                continue
            rel = safe_relative_path(f"{name}/{parts[0]}", where)
            stem = posixpath.splitext(parts[0])[0]
            splits[_HMDB_SPLIT_IDS[parts[1]]].append(VideoRecord(rel, label, stem))
    return Annotations(class_names, splits)


# --- Kinetics -----------------------------------------------------------------------------

_KINETICS_SPLITS = {
    "train": "train",
    "training": "train",
    "validate": "val",
    "val": "val",
    "validation": "val",
    "test": "test",
    "testing": "test",
}


def kinetics_clip_name(youtube_id: str, start: float, end: float) -> str:
    """The usual downloaded clip stem: `<youtube_id>_<start:06d>_<end:06d>`."""
    return f"{youtube_id}_{int(float(start)):06d}_{int(float(end)):06d}"


def parse_kinetics(path: Path) -> Annotations:
    """Kinetics-400/600/700 CSV or JSON releases: one file, or a folder of them.

    CSV: `label,youtube_id,time_start,time_end,split[,is_cc]` (test files may lack
    `label`). JSON: `{youtube_id: {"annotations": {"label", "segment"}, "subset"}}`.
    The class index is the position in the sorted label names of the annotation files.
    """
    files = (
        sorted(p for p in path.iterdir() if p.suffix in (".csv", ".json"))
        if path.is_dir()
        else [path]
    )
    if not files:
        raise FileNotFoundError(f"no Kinetics .csv or .json annotation files in {path}")
    rows: list[tuple[str | None, str, str, str]] = []  # label, clip name, split, where
    for file in files:
        rows.extend(
            _kinetics_json_rows(file) if file.suffix == ".json" else _kinetics_csv_rows(file)
        )
    class_names = sorted({label for label, *_ in rows if label})
    index = {name: i for i, name in enumerate(class_names)}
    splits: dict[str, list[VideoRecord]] = {}
    for label, clip, split, _where in rows:
        record = VideoRecord(clip, index[label] if label else UNLABELLED, clip)
        splits.setdefault(split, []).append(record)
    return Annotations(class_names, splits)


def _kinetics_split(value: str, where: str) -> str:
    split = _KINETICS_SPLITS.get(value.strip().lower())
    if split is None:
        raise AnnotationError(f"{where}: split {value!r} is not one of {sorted(_KINETICS_SPLITS)}")
    return split


def _kinetics_csv_rows(file: Path) -> list[tuple[str | None, str, str, str]]:
    with file.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        needed = {"youtube_id", "time_start", "time_end"}
        missing = needed - set(reader.fieldnames or [])
        if missing:
            raise AnnotationError(
                f"{file}: header lacks {sorted(missing)}; expected "
                "label,youtube_id,time_start,time_end,split[,is_cc]"
            )
        rows = []
        for number, row in enumerate(reader, start=2):
            where = f"{file}:{number}"
            try:
                clip = kinetics_clip_name(
                    row["youtube_id"].strip(), row["time_start"], row["time_end"]
                )
            except (TypeError, ValueError) as error:
                raise AnnotationError(f"{where}: bad time_start/time_end ({error})") from None
            split_value = row.get("split") or _split_from_filename(file, where)
            label = (row.get("label") or "").strip() or None
            rows.append(
                (label, safe_relative_path(clip, where), _kinetics_split(split_value, where), where)
            )
        return rows


def _kinetics_json_rows(file: Path) -> list[tuple[str | None, str, str, str]]:
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise AnnotationError(f"{file}: not valid JSON ({error})") from None
    if not isinstance(data, dict):
        raise AnnotationError(f"{file}: expected an object mapping youtube_id to its entry")
    rows = []
    for youtube_id, entry in data.items():
        where = f"{file}:{youtube_id}"
        annotations = entry.get("annotations") or {}
        segment = annotations.get("segment")
        if not segment or len(segment) != 2:
            raise AnnotationError(f"{where}: annotations.segment must be [start, end]")
        clip = safe_relative_path(kinetics_clip_name(youtube_id, *segment), where)
        split_value = entry.get("subset") or _split_from_filename(file, where)
        rows.append(
            (annotations.get("label") or None, clip, _kinetics_split(split_value, where), where)
        )
    return rows


def _split_from_filename(file: Path, where: str) -> str:
    for token in re.split(r"[_\-.]", file.stem.lower()):
        if token in _KINETICS_SPLITS:
            return token
    raise AnnotationError(f"{where}: no split column and none in the file name {file.name!r}")


# --- Something-Something V2 ---------------------------------------------------------------

SSV2_SPLITS = (("train", "train.json"), ("val", "validation.json"), ("test", "test.json"))


def parse_ssv2(path: Path) -> Annotations:
    """Something-Something V2's folder (or its labels.json): `labels.json` maps each class
    (a template with its brackets removed) to its index; `train.json` and `validation.json`
    list {"id", "template" ("Putting [something] on [something]"), "label",
    "placeholders"}; `test.json` lists {"id"} only (unlabelled). Videos are `<id>.webm`."""
    folder = path.parent if path.is_file() else path
    labels = _json_file(folder / "labels.json", dict)
    try:
        order = sorted(labels, key=lambda name: int(labels[name]))
    except (TypeError, ValueError):
        raise AnnotationError(f"{folder / 'labels.json'}: every value is a class index") from None
    if sorted(int(labels[n]) for n in order) != list(range(len(order))):
        raise AnnotationError(
            f"{folder / 'labels.json'}: class indices are not 0..{len(order) - 1}"
        )
    index = {name: i for i, name in enumerate(order)}
    parsed = Annotations(class_names=order)
    for split, name in SSV2_SPLITS:
        file = folder / name
        if not file.exists():
            if split != "test":
                raise AnnotationError(f"{file}: missing (Something-Something V2 ships {name})")
            continue
        records = []
        for number, entry in enumerate(_json_file(file, list)):
            where = f"{file}: entry {number}"
            if not isinstance(entry, dict) or "id" not in entry:
                raise AnnotationError(f'{where}: expected an object with an "id"')
            video_id = str(entry["id"]).strip()
            label = UNLABELLED
            if split != "test":
                template = str(entry.get("template", "")).replace("[", "").replace("]", "")
                if template not in index:
                    close = difflib.get_close_matches(template, order, n=1)
                    hint = f" (closest: {close[0]!r})" if close else ""
                    raise AnnotationError(
                        f"{where}: template {entry.get('template')!r} is no class of "
                        f"labels.json{hint}"
                    )
                label = index[template]
            records.append(
                VideoRecord(safe_relative_path(f"{video_id}.webm", where), label, video_id)
            )
        parsed.splits[split] = records
    return parsed


def _json_file(file: Path, kind: type) -> Any:
    try:
        data = json.loads(file.read_text(encoding="utf-8-sig"))
    except FileNotFoundError:
        raise AnnotationError(f"{file}: missing") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise AnnotationError(f"{file}: not valid JSON ({error})") from None
    if not isinstance(data, kind):
        raise AnnotationError(f"{file}: expected a JSON {kind.__name__}")
    return data


# --- Custom: one folder per class, or a `path label` list ---------------------------------


FOLDER_VAL_FRACTION = 0.2  # of each class's videos, when a folder has no split folders


def parse_folder(root: Path) -> Annotations:
    """One folder per class under `root`, or under `root/{train,val,test}/` for splits.

    Without split folders the videos are split into `train` and `val`: about
    FOLDER_VAL_FRACTION of each class goes to `val`, chosen by a hash of the video's path
    (so adding or removing a video moves no other), and at least one video of every class
    with two or more. Put videos under `test/` to evaluate on all of them. Classes are
    sorted by name. Paths are relative to `root`, which is also the video root.
    """
    split_dirs = {s: root / s for s in SPLITS if (root / s).is_dir()}
    flat = not split_dirs
    if flat:
        split_dirs = {"train": root}
    class_names = sorted(
        {
            c.name
            for d in split_dirs.values()
            for c in d.iterdir()
            if c.is_dir() and not c.name.startswith(".") and not _links_above(c, root)
        }
    )
    if not class_names:
        raise FileNotFoundError(f"no class folders under {root}")
    splits: dict[str, list[VideoRecord]] = {}
    for split, split_dir in split_dirs.items():
        records = []
        for label, name in enumerate(class_names):
            folder = split_dir / name
            for video in walk_files(folder, VIDEO_EXTENSIONS) if folder.is_dir() else ():
                records.append(VideoRecord(video.relative_to(root).as_posix(), label, video.stem))
        splits[split] = records
    return Annotations(class_names, split_by_hash(splits["train"]) if flat else splits)


def _links_above(folder: Path, root: Path) -> bool:
    """Whether the class folder `folder` is a link to `root` or a folder above it (it would
    be a phantom class holding every video); warned about when it is."""
    if not folder.is_symlink():
        return False
    real, top = folder.resolve(), root.resolve()
    if real == top or real in top.parents:
        log.warning("skipped %s: a link to %s, which holds the dataset, not a class", folder, real)
        return True
    return False


def split_by_hash(
    records: list[VideoRecord],
    fraction: float = FOLDER_VAL_FRACTION,
    key: Callable[[VideoRecord], str] = lambda record: record.path,
) -> dict[str, list[VideoRecord]]:
    """{"train", "val"}: per class, the units (`key`: a video's path, or its group) whose
    hash falls below `fraction` go to `val` with all their videos, and the lowest-hashing
    unit when none does; a class of one unit keeps it for training, and no class gives
    all of its units to `val`. A unit's side depends on its own key (and its class's
    other units only at those edges), so adding a video moves no other."""

    def position(unit: str) -> float:  # uniform in [0, 1), fixed per unit
        return int(hashlib.sha256(unit.encode()).hexdigest()[:8], 16) / 2**32

    val: set[str] = set()
    for label in {r.label for r in records}:
        units = sorted({key(r) for r in records if r.label == label}, key=position)
        chosen = [unit for unit in units if position(unit) < fraction]
        if not chosen and len(units) > 1:
            chosen = units[:1]
        val.update(chosen[: len(units) - 1])  # at least one unit trains
    return {
        "train": [r for r in records if key(r) not in val],
        "val": [r for r in records if key(r) in val],
    }


# The group a video belongs to: UCF-101's `v_<Class>_gNN_cNN` clips of one group (gNN)
# come from one long video, HMDB-51's `<source>_<N>` clips from one source; clips of a
# group must not straddle two splits.
_CLIP_SUFFIX = re.compile(r"(_c\d+|_\d+)$")


def video_group(record: VideoRecord) -> str:
    """`Class:<video id without its clip number>`: the unit a held-out split is drawn by."""
    return f"{record.label}:{_CLIP_SUFFIX.sub('', record.video_id)}"


def hold_out(annotations: Annotations, fraction: float) -> tuple[Annotations, dict[str, int]]:
    """`annotations` with `fraction` of the training split's groups (`video_group`) moved
    to a `val` split, where it has none (UCF-101, HMDB-51); unchanged where it has one.
    Also returns what was held out: {"groups", "videos"} (empty when nothing was)."""
    if annotations.splits.get("val") or not annotations.splits.get("train"):
        return annotations, {}
    parts = split_by_hash(annotations.splits["train"], fraction, video_group)
    splits = {**annotations.splits, **parts}
    held = {
        "groups": len({video_group(r) for r in parts["val"]}),
        "videos": len(parts["val"]),
    }
    return Annotations(annotations.class_names, splits, list(annotations.notes)), held


def parse_list(file: Path) -> Annotations:
    """A `path label` list, one video a line; the split comes from the file name
    (`train`, `val`, `test`; default `test`). Labels are 0-based integers or class names.
    Class names come from `classes.txt` beside the list if present (one per line, in label
    order), else from the sorted distinct names in the list.
    """
    entries = []
    for number, line in _lines(file):
        where = f"{file}:{number}"
        parts = line.rsplit(maxsplit=1)
        if len(parts) != 2:
            raise AnnotationError(f"{where}: expected '<relative/path> <label>', got {line!r}")
        entries.append((safe_relative_path(parts[0], where), parts[1], where))
    classes_file = file.parent / "classes.txt"
    if classes_file.is_file():
        class_names = [line for _, line in _lines(classes_file)]
    elif all(label.isdigit() for _, label, _ in entries):
        class_names = [
            str(i) for i in range(max((int(lb) for _, lb, _ in entries), default=-1) + 1)
        ]
    else:
        class_names = sorted({label for _, label, _ in entries})
    index = {name: i for i, name in enumerate(class_names)}
    records = []
    for rel, label, where in entries:
        if label in index:
            value = index[label]
        elif label.isdigit() and int(label) < len(class_names):
            value = int(label)
        else:
            raise AnnotationError(
                f"{where}: label {label!r} is not one of the {len(class_names)} classes"
            )
        records.append(VideoRecord(rel, value, posixpath.splitext(posixpath.basename(rel))[0]))
    split = next((s for s in SPLITS if s in re.split(r"[_\-.]", file.stem.lower())), "test")
    return Annotations(class_names, {split: records})
