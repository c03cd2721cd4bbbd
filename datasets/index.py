"""Finding annotated videos on disk.

Annotation paths do not always match the disk: UCF-101 lists disagree in case with the
folders, and Kinetics clips sit flat or in class folders with any extension. One walk of
the video root resolves all of these. Directory links are followed, each real folder once
(`vidbench.datasets.files.walk_files`), and links to nothing count as absent videos.
"""

from __future__ import annotations

import logging
import posixpath
import re
from collections.abc import Sequence
from pathlib import Path

from vidbench.datasets.annotations import VIDEO_EXTENSIONS, VideoRecord
from vidbench.datasets.files import walk_files

log = logging.getLogger(__name__)


def locate_videos(records: Sequence[VideoRecord], root: str | Path) -> list[Path | None]:
    """Absolute path of each record's video under `root`, or None when it is absent.

    Tried in order: the exact relative path; the same path ignoring case; any video file
    under `root` whose stem equals the record's `video_id` (case-insensitive); for a
    Kinetics clip (`<youtube_id>_<start>_<end>`), a file named by its YouTube id alone
    (`<youtube_id>.mp4`, as some copies name them).
    """
    root = Path(root)
    found: list[Path | None] = []
    pending = []
    for i, record in enumerate(records):
        candidate = root / record.path
        if posixpath.splitext(record.path)[1] and candidate.is_file():
            found.append(candidate)
        else:
            found.append(None)
            pending.append(i)
    if not pending or not root.is_dir():
        return found
    by_path, by_stem = _walk(root)
    ambiguous = 0
    for i in pending:
        record = records[i]
        hit = by_path.get(record.path.lower())
        if hit is None:
            hits = by_stem.get(record.video_id.lower(), [])
            clip = KINETICS_CLIP.fullmatch(record.video_id)
            if not hits and clip:
                hits = by_stem.get(clip["youtube_id"].lower(), [])
            ambiguous += len(hits) > 1
            hit = hits[0] if hits else None
        found[i] = hit
    if ambiguous:
        log.warning(
            "%d videos matched several files under %s; took the first of each", ambiguous, root
        )
    return found


# `annotations.kinetics_clip_name`: <youtube_id>_<start:06d>_<end:06d>
KINETICS_CLIP = re.compile(r"(?P<youtube_id>.+)_\d{6}_\d{6}")


def unmatched_files(root: str | Path, located: Sequence[Path | None]) -> list[Path]:
    """The video files under `root` that no annotation entry was located at: what a copy
    holds under names the annotations do not give (`data check` counts them)."""
    taken = {path.resolve() for path in located if path is not None}
    return [path for path in walk_files(root, VIDEO_EXTENSIONS) if path.resolve() not in taken]


def _walk(root: Path) -> tuple[dict[str, Path], dict[str, list[Path]]]:
    by_path: dict[str, Path] = {}
    by_stem: dict[str, list[Path]] = {}
    for path in walk_files(root, VIDEO_EXTENSIONS):
        by_path[path.relative_to(root).as_posix().lower()] = path
        by_stem.setdefault(path.stem.lower(), []).append(path)
    return by_path, by_stem
