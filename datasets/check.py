"""`vidbench data check`: index a dataset, open every video, count what is usable.

Probe results are cached in a manifest keyed by file path, size and modification time,
so a second check opens only videos that changed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from vidbench.datasets.annotations import load_annotations
from vidbench.datasets.decoders import (
    TIMED_OUT,
    DecodeError,
    call_with_timeout,
    native_messages_to_log,
    open_video,
    read_frames,
)
from vidbench.datasets.files import atomic_write_text, default_cache_dir
from vidbench.datasets.index import locate_videos, unmatched_files

log = logging.getLogger(__name__)
MANIFEST_VERSION = 1


def probe_video(path: str | Path, decoder: str = "decord") -> dict[str, Any]:
    """Open `path` and decode its first and last frames; raise DecodeError if it cannot.

    Returns {"frames", "fps", "height", "width"}.
    """
    video = open_video(path, decoder, num_threads=1)
    frames = read_frames(video, np.array([0, video.num_frames - 1]))
    return {
        "frames": video.num_frames,
        "fps": round(video.fps, 3),
        "height": int(frames.shape[1]),
        "width": int(frames.shape[2]),
    }


def manifest_path(video_root: Path, decoder: str, cache_dir: Path | None = None) -> Path:
    key = hashlib.sha1(f"{video_root.resolve()}|{decoder}".encode()).hexdigest()[:16]
    return (cache_dir or default_cache_dir()) / "manifests" / f"{key}.json"


@dataclass
class Manifest:
    """Probe results per absolute video path, valid while size and mtime are unchanged."""

    path: Path
    entries: dict[str, dict[str, Any]]

    @classmethod
    def load(cls, path: Path) -> Manifest:
        try:
            data = json.loads(path.read_text())
            if data.get("version") == MANIFEST_VERSION:
                return cls(path, data["entries"])
        except FileNotFoundError:
            pass
        except (OSError, ValueError, KeyError, AttributeError) as error:
            log.warning("ignoring unreadable manifest cache %s (%s)", path, error)
        return cls(path, {})

    def lookup(self, video: Path) -> dict[str, Any] | None:
        """The cached probe of `video`, unless it changed since or its probe timed out."""
        entry = self.entries.get(str(video))
        if not entry or timed_out(entry):
            return None
        try:
            stat = video.stat()
        except OSError:
            return None
        if entry["size"] == stat.st_size and entry["mtime_ns"] == stat.st_mtime_ns:
            return entry
        return None

    def save(self) -> None:
        """Write the manifest; a cache that cannot be written is warned about (the check's
        results stand, they are only not remembered)."""
        try:
            atomic_write_text(
                self.path, json.dumps({"version": MANIFEST_VERSION, "entries": self.entries})
            )
        except OSError as error:
            log.warning("probe results not cached: %s", error)

    def writable(self) -> bool:
        """Whether the manifest's folder can be written (made if absent)."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError:
            return False
        return os.access(self.path.parent, os.W_OK)


def timed_out(entry: dict[str, Any]) -> bool:
    """A probe that ran out of time says nothing lasting about the video (a busy moment,
    a slow mount): it is reported but never cached as a verdict."""
    return bool(entry.get("error")) and entry["error"].startswith(TIMED_OUT)


def _probe_entry(video: Path, decoder: str, timeout: float | None) -> dict[str, Any]:
    try:
        stat = video.stat()
    except OSError as error:  # vanished since the walk
        return {"size": None, "mtime_ns": None, "error": f"cannot stat ({error.strerror})"}
    entry: dict[str, Any] = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "error": None}
    try:
        entry.update(call_with_timeout(lambda: probe_video(video, decoder), timeout, video))
    except DecodeError as error:
        entry["error"] = error.reason
    return entry


def check_dataset(
    dataset: str,
    annotations: str | Path,
    videos: str | Path,
    fold: int = 1,
    *,
    decoder: str = "decord",
    workers: int | None = None,
    timeout: float | None = 60.0,
    cache_dir: Path | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Count, per split, the listed videos that are readable, absent or undecodable.

    Returns {"dataset", "split": fold, "num_classes", "splits": {name: {"expected",
    "found", "missing", "unreadable"}}, plus "probed" (videos opened this run), "cached"
    (unchanged videos taken from the manifest), "problems" ({path: reason}), "notes"
    (what the annotations' own repeats cost), "unmatched" (Kinetics: video files under
    `videos` that no entry names), "stats" and "manifest" (its path)}.
    """
    parsed = load_annotations(dataset, annotations, fold)
    root = Path(videos)
    manifest = Manifest.load(manifest_path(root, decoder, cache_dir))
    if not manifest.writable():  # said before the probes, not after them
        log.warning(
            "the manifest cache %s cannot be written: every video is opened and nothing is "
            "remembered for the next check (--cache chooses another folder)",
            manifest.path.parent,
        )
    located = {split: locate_videos(records, root) for split, records in parsed.splits.items()}
    present = sorted({p for paths in located.values() for p in paths if p is not None})
    results: dict[Path, dict[str, Any]] = {}
    to_probe = []
    for video in present:
        cached = manifest.lookup(video)
        if cached is None:
            to_probe.append(video)
        else:
            results[video] = cached
    if to_probe:
        with (
            native_messages_to_log(),
            ThreadPoolExecutor(max_workers=workers or os.cpu_count() or 1) as pool,
        ):
            jobs = pool.map(lambda v: (v, _probe_entry(v, decoder, timeout)), to_probe)
            for video, entry in tqdm(
                jobs,
                total=len(to_probe),
                desc="opening videos",
                unit="video",
                disable=None if progress else True,
            ):
                results[video] = entry
                if not timed_out(entry):
                    manifest.entries[str(video)] = entry
        manifest.save()

    unmatched = (  # Kinetics copies name their clips in several ways; the others as listed
        unmatched_files(root, [p for paths in located.values() for p in paths])
        if dataset.startswith("kinetics")
        else []
    )
    splits, problems = {}, {}
    for split, records in parsed.splits.items():
        counts = {"expected": len(records), "found": 0, "missing": 0, "unreadable": 0}
        for record, path in zip(records, located[split], strict=True):
            if path is None:
                counts["missing"] += 1
                problems[record.path] = "missing"
            elif results[path]["error"]:
                counts["unreadable"] += 1
                problems[str(path)] = results[path]["error"]
            else:
                counts["found"] += 1
        splits[split] = counts
    good = [e for e in results.values() if not e["error"]]
    stats = {}
    if good:
        stats = {
            "frames": {
                "min": min(e["frames"] for e in good),
                "median": int(np.median([e["frames"] for e in good])),
                "max": max(e["frames"] for e in good),
            },
            "fps": Counter(e["fps"] for e in good).most_common(5),
            "sizes": Counter(f"{e['width']}x{e['height']}" for e in good).most_common(5),
        }
    return {
        "dataset": dataset,
        "split": fold,
        "num_classes": parsed.num_classes,
        "splits": splits,
        "probed": len(to_probe),
        "cached": len(present) - len(to_probe),
        "problems": problems,
        "notes": parsed.notes,
        "unmatched": [str(path.relative_to(root)) for path in unmatched],
        "stats": stats,
        "manifest": str(manifest.path),
    }


# What Kinetics clips may be called (the unmatched-files line)
KINETICS_NAMES = (
    "<youtube_id>_<start:06d>_<end:06d>.<ext> or <youtube_id>.<ext>, flat or in class folders"
)


def format_report(report: dict[str, Any], shown: int = 20) -> str:
    """`check_dataset`'s report as the table `vidbench data check` prints: counts per
    split, frame and size statistics, the first `shown` problems, and the cache used."""
    lines = [
        f"{report['dataset']} (fold {report['split']}): {report['num_classes']} classes",
        f"{'split':<8}{'expected':>10}{'found':>10}{'missing':>10}{'unreadable':>12}",
    ]
    for split, counts in report["splits"].items():
        lines.append(
            f"{split:<8}{counts['expected']:>10}{counts['found']:>10}"
            f"{counts['missing']:>10}{counts['unreadable']:>12}"
        )
    stats = report["stats"]
    if stats:
        frames = stats["frames"]
        lines.append(
            f"frames per video: min {frames['min']}, median {frames['median']}, "
            f"max {frames['max']}; "
            f"fps: {', '.join(f'{fps:g} ({n})' for fps, n in stats['fps'])}; "
            f"sizes: {', '.join(f'{size} ({n})' for size, n in stats['sizes'])}"
        )
    lines += [f"  annotations: {note}" for note in report.get("notes", [])]
    unmatched = report.get("unmatched", [])
    if unmatched:
        lines.append(
            f"  {len(unmatched)} video files under the video folder match no annotation entry "
            f"(first: {', '.join(unmatched[:3])}); expected names: {KINETICS_NAMES}"
        )
    problems = report["problems"]
    for path, reason in list(problems.items())[:shown]:
        lines.append(
            f"  {reason}: {path}" if reason == "missing" else f"  unreadable: {path}: {reason}"
        )
    if len(problems) > shown:
        lines.append(f"  ... and {len(problems) - shown} more")
    lines.append(
        f"opened {report['probed']} videos, {report['cached']} unchanged ones from the "
        f"manifest cache {report['manifest']}"
    )
    return "\n".join(lines)
