"""`vidbench flow extract`: flow for every video of a tree or a dataset, resumable and parallel.

Finished videos (flow file plus matching provenance) are skipped on a re-run; temporary
files left by a killed run are removed; a video that fails is recorded in
`FLOWDIR/failures.json` with its error and the run goes on.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import threading
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

import cv2
from tqdm import tqdm

from vidbench.datasets.annotations import VIDEO_EXTENSIONS, load_annotations
from vidbench.datasets.decoders import DecodeError
from vidbench.datasets.files import (
    atomic_write_text,
    locked,
    refuse_nested,
    temporary_in_use,
    walk_files,
)
from vidbench.datasets.flow import (
    FlowConfig,
    FlowMismatch,
    check_provenance,
    extract_flow,
    flow_path,
    provenance_path,
)
from vidbench.datasets.index import locate_videos

log = logging.getLogger(__name__)
FAILURES_FILE = "failures.json"


def list_videos(
    videos: Path, dataset: str | None = None, annotations: Path | None = None
) -> tuple[list[str], int]:
    """Relative paths of the videos to process, and how many annotated ones are absent.

    Without a dataset: every video file under `videos`. With one: the videos its
    annotations list in any fold (UCF-101/HMDB-51 folds 1-3 share their videos).
    """
    if dataset is None:
        files = walk_files(videos, VIDEO_EXTENSIONS)
        return sorted(p.relative_to(videos).as_posix() for p in files), 0
    folds = (1, 2, 3) if dataset in ("ucf101", "hmdb51") else (1,)
    records = {}
    for fold in folds:
        try:
            parsed = load_annotations(dataset, annotations, fold)
        except FileNotFoundError:
            if fold == 1:
                raise
            continue
        for split in parsed.splits.values():
            records.update({r.path: r for r in split})
    located = locate_videos(list(records.values()), videos)
    present = sorted({p.relative_to(videos).as_posix() for p in located if p is not None})
    return present, sum(p is None for p in located)


def _end_with_parent(parent: int) -> None:
    """Worker initialiser: end this worker when the process that started it is gone
    (a killed `flow extract` leaves no orphans computing on)."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, name="vidbench-parent-watch", daemon=True).start()


def _extract_one(
    video: str, out: str, config: FlowConfig, timeout: float | None
) -> tuple[str, str | None]:
    cv2.setNumThreads(1)
    try:
        extract_flow(video, out, config, timeout=timeout)
        return video, None
    except (DecodeError, OSError, cv2.error, ValueError) as error:
        return video, f"{type(error).__name__}: {error}"


def select_shard(relpaths: list[str], shard: tuple[int, int] | None) -> list[str]:
    """The videos of shard K of N (`shard` = (K, N), 1 <= K <= N; None: all of them): of
    the sorted list, every Nth from the Kth, so shards differ by one video at most. Every
    shard must list the same videos (the same --videos, --dataset and --annotations)."""
    if shard is None:
        return list(relpaths)
    index, count = shard
    if not 1 <= index <= count:
        raise ValueError(f"shard {index}/{count}: K must be between 1 and N")
    return sorted(relpaths)[index - 1 :: count]


def parse_shard(text: str) -> tuple[int, int]:
    """`"2/8"` -> (2, 8); ValueError naming the text unless 1 <= K <= N."""
    index, sep, count = text.partition("/")
    try:
        shard = (int(index), int(count))
    except ValueError:
        shard = None
    if not sep or shard is None or not 1 <= shard[0] <= shard[1]:
        raise ValueError(f"shard {text!r}: give K/N with 1 <= K <= N, e.g. 1/4")
    return shard


def remove_stale_temporaries(out_root: Path, relpaths: list[str]) -> int:
    """Remove the partial files an interrupted run left for the videos of `relpaths` (only
    theirs: another shard may be writing its own beside them; and only abandoned ones:
    another run on the same folder may be writing them now)."""
    stems: dict[Path, set[str]] = {}
    for rel in relpaths:
        target = flow_path(out_root, rel)
        stems.setdefault(target.parent, set()).add(target.stem)
    removed = 0
    for folder, names in stems.items():
        try:
            entries = os.listdir(folder)
        except OSError:
            continue
        for entry in entries:
            if not entry.startswith(".") or ".tmp" not in entry:
                continue
            if any(
                entry.startswith((f".{n}.tmp", f".{n}.json.")) for n in names
            ) and not temporary_in_use(Path(folder, entry)):
                Path(folder, entry).unlink(missing_ok=True)
                removed += 1
    return removed


def unsafe_targets(videos: Path, out_root: Path, relpaths: list[str]) -> dict[str, str]:
    """{relpath: why} for the videos whose flow cannot be written safely, left out of the
    run and reported as failed: two videos whose flow (or provenance) would be one file
    (`c.avi` and `c.mp4`), and a flow file that resolves, through a link under `out_root`,
    into the video root or onto any input video."""
    problems: dict[str, str] = {}
    by_target: dict[Path, list[str]] = {}
    for rel in relpaths:
        by_target.setdefault(flow_path(out_root, rel), []).append(rel)
    for target, sharing in by_target.items():
        if len(sharing) > 1:
            for rel in sharing:
                others = ", ".join(o for o in sharing if o != rel)
                problems[rel] = (
                    f"its flow would be written to {target}, as would that of {others}: "
                    "rename one of them (flow files are named by the video without its extension)"
                )
    root = videos.resolve()
    inputs = {(videos / rel).resolve() for rel in relpaths}
    for rel in relpaths:
        target = flow_path(out_root, rel)
        for written in (target, provenance_path(target)):
            real = written.resolve()
            if real in inputs or real == root or root in real.parents:
                problems[rel] = (
                    f"{written} resolves to {real}, inside the video root {videos} (a link under "
                    "--out?); refusing to write there"
                )
    return problems


def record_failures(out_root: Path, relpaths: list[str], failed: dict[str, str]) -> Path:
    """`out_root/failures.json` with this run's `failed` videos in place of whatever it said
    before about `relpaths` (shards running at once each update their own part)."""
    path = out_root / FAILURES_FILE
    with locked(out_root / f".{FAILURES_FILE}.lock"):
        try:
            known = json.loads(path.read_text())
        except (OSError, ValueError):
            known = {}
        done = set(relpaths)
        known = {
            k: v for k, v in (known if isinstance(known, dict) else {}).items() if k not in done
        }
        known.update(failed)
        if known:
            atomic_write_text(path, json.dumps(dict(sorted(known.items())), indent=1))
        else:
            path.unlink(missing_ok=True)
    return path


def extract_all(
    videos: Path,
    out_root: Path,
    config: FlowConfig,
    relpaths: list[str],
    *,
    workers: int = 1,
    progress: bool = True,
    timeout: float | None = 60.0,
) -> dict[str, Any]:
    """Extract flow for `relpaths` (relative to `videos`) into `out_root`, which may not
    be, contain or lie inside `videos`; a decode that outlives `timeout` s fails its video.

    Returns {"total", "extracted", "skipped", "failed": {relpath: error}}.
    """
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    if not Path(videos).is_dir():
        raise FileNotFoundError(f"video root {videos} is not a folder")
    refuse_nested(out_root, videos, "flow root")
    out_root.mkdir(parents=True, exist_ok=True)
    failed = unsafe_targets(videos, out_root, relpaths)
    stale = remove_stale_temporaries(out_root, [r for r in relpaths if r not in failed])
    if stale:
        log.info("removed %d partial files left by an interrupted run", stale)
    todo = []
    for rel in relpaths:
        if rel in failed:
            continue
        target = flow_path(out_root, rel)
        if target.is_file() and provenance_path(target).is_file():
            try:
                check_provenance(target, config)
                continue  # finished earlier
            except FlowMismatch as error:
                failed[rel] = f"{error}; delete it or extract into another --out"
                continue
        todo.append(rel)
    skipped = len(relpaths) - len(todo) - len(failed)
    bar = tqdm(
        total=len(todo), desc="extracting flow", unit="video", disable=None if progress else True
    )
    rel_of = {str(videos / rel): rel for rel in todo}
    jobs = [(str(videos / rel), str(flow_path(out_root, rel)), config, timeout) for rel in todo]
    if workers > 1 and len(jobs) > 1:
        # spawn, not fork: forking a process that holds decoder and OpenMP threads can deadlock
        with ProcessPoolExecutor(
            max_workers=workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_end_with_parent,
            initargs=(os.getpid(),),
        ) as pool:
            futures = [pool.submit(_extract_one, *job) for job in jobs]
            results = (future.result() for future in as_completed(futures))
            _collect(results, rel_of, failed, bar)
    else:
        _collect((_extract_one(*job) for job in jobs), rel_of, failed, bar)
    bar.close()
    record_failures(out_root, relpaths, failed)
    return {
        "total": len(relpaths),
        "extracted": len(todo) - len(set(failed) & set(todo)),
        "skipped": skipped,
        "failed": failed,
    }


def _collect(results, rel_of: dict[str, str], failed: dict[str, str], bar: tqdm) -> None:
    for video, error in results:
        if error:
            failed[rel_of[video]] = error
            log.warning("flow failed for %s: %s", video, error)
            bar.set_postfix(failed=len(failed))
        bar.update()
