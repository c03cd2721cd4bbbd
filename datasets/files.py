"""Ground-level utilities: atomic writes, locks, folder locks, safe walks, bounded calls.

Ground level of the package (imports nothing of vidbench), used by every layer above:

- `atomic_write_text` / `atomic_write` write to a temporary file beside the target,
  fsync it, give it the permissions the target had (or the user's umask for a new file),
  then rename it over the target: a crash leaves the old file or the new one, never half
  of one. A write that fails (a full disk) names the file. The writer holds a lock on its
  temporary file (`temporary_in_use`), so a cleaner removes only abandoned ones.
- `locked` holds an exclusive lock on a sidecar file (appends to a shared file take it).
- `FolderLock` keeps two commands from working in one output folder at once; the
  kernel releases it when its process ends, even by kill -9.
- `refuse_same_file` / `refuse_nested` stop an output from replacing an input.
- `walk_files` lists a tree following directory links once each (loops end).
- `default_cache_dir` is where caches live ($VIDBENCH_CACHE, else XDG).
- `run_bounded` gives up on a call (a decode, a W&B request) after a time limit.
"""

from __future__ import annotations

import datetime
import errno
import fcntl
import json
import os
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO, TypeVar


def default_cache_dir() -> Path:
    base = os.environ.get("VIDBENCH_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "vidbench"
    )
    return Path(base)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _target_mode(path: Path) -> int:
    """The permission bits the file at `path` has, or a new file's under the umask."""
    try:
        return path.stat().st_mode & 0o7777
    except OSError:
        return 0o666 & ~_umask()


def naming(path: str | Path, error: OSError, doing: str = "cannot write") -> OSError:
    """`error` again, its message naming `path` (a full disk says which file)."""
    if str(path) in str(error):
        return error
    reason = error.strerror or str(error)
    named = OSError(error.errno, f"{path}: {doing}: {reason}")
    return named


def atomic_write(path: str | Path, write: Callable[[BinaryIO], None]) -> Path:
    """Call `write(handle)` to fill a temporary file beside `path` (opened for binary
    writing), fsync it and rename it over `path` with the permissions `path` had (or the
    umask's). A failed write removes the temporary file; an OSError names `path`, and so
    does a writer's own error when the disk is full. Returns `path`."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as error:
        raise naming(path, error) from error
    hold = os.dup(fd)  # open until the rename: closing the writer's handle keeps the lock
    lock_temporary(hold)
    try:
        with os.fdopen(fd, "wb") as handle:  # closed even when `write` fails
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, _target_mode(path))
        os.replace(tmp, path)
    except OSError as error:
        raise naming(path, error) from None
    except RuntimeError as error:  # torch.save reports a full disk as its own error
        if _disk_full(path.parent):
            raise OSError(
                errno.ENOSPC, f"{path}: cannot write: No space left on device ({error})"
            ) from None
        raise
    finally:
        Path(tmp).unlink(missing_ok=True)
        os.close(hold)
    return path


def lock_temporary(fd: int) -> None:
    """Lock the temporary file open at `fd` until `fd` is closed, so `temporary_in_use`
    tells it from an abandoned one."""
    fcntl.flock(fd, fcntl.LOCK_EX)


def temporary_in_use(path: str | Path) -> bool:
    """Whether a live writer holds the lock on the temporary file `path` (`lock_temporary`).
    The kernel drops the lock when its holder ends, however it ends, so a temporary of a
    killed writer reads as not in use."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return True
    finally:
        os.close(fd)
    return False


def _disk_full(folder: Path) -> bool:
    try:
        usage = os.statvfs(folder)
    except OSError:
        return False
    return usage.f_bavail * usage.f_frsize < 1 << 20


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write `text` (UTF-8) to `path` atomically, keeping its permissions."""
    data = text.encode("utf-8", "surrogateescape")
    return atomic_write(path, lambda handle: handle.write(data))


@contextmanager
def locked(lock_path: Path) -> Iterator[None]:
    """Hold an exclusive lock on `lock_path` (created if absent) while in the block."""
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


class FolderBusy(OSError):
    """Another process holds the lock of a folder; the message names it."""


class FolderLock:
    """`with FolderLock(out, "vidbench run"):` one process at a time works in `out`.

    The lock is `out/.vidbench.lock` (flock, released by the kernel when the holder ends
    however it ends); the file says who holds it, for the message the next one gets.
    """

    NAME = ".vidbench.lock"

    def __init__(self, folder: str | Path, what: str) -> None:
        self.path = Path(folder) / self.NAME
        self.what = what
        self._fd: int | None = None

    def __enter__(self) -> FolderLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            os.close(fd)
            if error.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                raise naming(self.path, error, "cannot lock") from error
            raise FolderBusy(
                f"{self.path.parent} is in use by {self._holder()}; wait for it to finish "
                "or give another output folder"
            ) from None
        holder = {
            "what": self.what,
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
            "command": " ".join(sys.argv),
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(holder).encode(), 0)
        self._fd = fd
        return self

    def _holder(self) -> str:
        try:
            holder: dict[str, Any] = json.loads(self.path.read_text())
            return (
                f"{holder['what']} (pid {holder['pid']} on {holder['host']}, started "
                f"{holder['started']}: {holder['command']})"
            )
        except (OSError, ValueError, KeyError, TypeError):
            return "another process"

    def __exit__(self, *exc: object) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def same_file(a: str | Path, b: str | Path) -> bool:
    """Whether `a` and `b` name one file (through links, case-folding file systems...)."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return Path(a).resolve() == Path(b).resolve()


def refuse_same_file(output: str | Path, inputs: list[str | Path], what: str) -> None:
    """Raise ValueError when `output` is one of `inputs` (writing it would destroy one)."""
    for source in inputs:
        if same_file(output, source):
            raise ValueError(f"{what} {output} is the input {source}; writing it would replace it")


def refuse_nested(output: str | Path, source: str | Path, what: str) -> None:
    """Raise ValueError when the folder `output` is, contains or lies inside `source` (a
    folder, or a file: then `output` may not contain it)."""
    out, src = Path(output).resolve(), Path(source).resolve()
    kind = "input file" if src.is_file() else "input folder"
    if out == src:
        raise ValueError(f"{what} {output} is the {kind} {source}; give another one")
    if src in out.parents:
        raise ValueError(f"{what} {output} lies inside the {kind} {source}; give another")
    if out in src.parents:
        raise ValueError(f"{what} {output} contains the {kind} {source}; give another")


def walk_files(
    root: str | Path, suffixes: tuple[str, ...] | None = None, *, hidden: bool = False
) -> Iterator[Path]:
    """Files under `root`, sorted per folder; hidden folders are skipped, hidden files too
    unless `hidden`.

    Directory links are followed, but each real directory is visited once, so a link
    loop ends. Links to nothing (dangling) are left out. `suffixes` (lower-case, with the
    dot) keeps only files ending so.
    """
    seen: set[tuple[int, int]] = set()
    for folder, dirs, files in os.walk(root, followlinks=True):
        try:
            info = os.stat(folder)
        except OSError:
            dirs[:] = []
            continue
        if (info.st_dev, info.st_ino) in seen:
            dirs[:] = []
            continue
        seen.add((info.st_dev, info.st_ino))
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if (name.startswith(".") and not hidden) or (
                suffixes is not None and os.path.splitext(name)[1].lower() not in suffixes
            ):
                continue
            path = Path(folder, name)
            if path.exists():
                yield path


T = TypeVar("T")
WAIT_SLICE_S = 1.0  # run_bounded's wait step
_clock = time.monotonic  # run_bounded's clock (a test makes it jump, as a stopped process sees)


def run_bounded(fn: Callable[[], T], timeout: float | None, name: str = "vidbench-bounded") -> T:
    """Run `fn` and return its result, or raise TimeoutError after `timeout` seconds.

    The call runs on a daemon thread (decord and PyAV release the GIL while decoding), so
    a call stuck in native code or on the network is abandoned rather than hanging the run
    or its exit. The limit counts the time this process runs: a wait of one-second slices,
    where a slice that took far longer (the process stopped by Ctrl-Z or SIGSTOP, the
    machine asleep) counts as two seconds, so resuming a stopped run times nothing out.
    """
    if timeout is None:
        return fn()
    outcome: dict[str, object] = {}

    def target() -> None:
        try:
            outcome["value"] = fn()
        except BaseException as error:
            outcome["error"] = error

    thread = threading.Thread(target=target, name=name, daemon=True)
    thread.start()
    waited = 0.0
    while thread.is_alive() and waited < timeout:
        before = _clock()
        thread.join(min(WAIT_SLICE_S, timeout - waited))
        waited += min(_clock() - before, 2 * WAIT_SLICE_S)
    if thread.is_alive():
        raise TimeoutError(f"gave up after {timeout:g} s")
    if "error" in outcome:
        raise outcome["error"]  # type: ignore[misc]
    return outcome["value"]  # type: ignore[return-value]
