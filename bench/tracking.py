"""Weights & Biases through Lightning's `WandbLogger`, offline unless asked otherwise.

Offline runs land in `DIR/wandb/` and need no account or network; `wandb sync DIR/wandb/
offline-run-*` uploads them later. The mode is the sweep's `wandb.mode`, else
`$WANDB_MODE`, else offline. Init and finish are bounded in time: with no network a
cell goes on without W&B (and says so) instead of hanging; its results file is written
before W&B is told anything.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
from pathlib import Path
from typing import Any

from vidbench.bench.config import WandbConfig
from vidbench.datasets.files import atomic_write_text, run_bounded

log = logging.getLogger(__name__)


def wandb_mode(config: WandbConfig) -> str:
    return config.mode or os.environ.get("WANDB_MODE") or "offline"


def active_mode(config: WandbConfig) -> str | None:
    """The W&B mode to run in, or None when W&B is off."""
    mode = wandb_mode(config)
    return None if not config.enabled or mode == "disabled" else mode


def run_settings(config: WandbConfig) -> Any:
    import wandb

    return wandb.Settings(init_timeout=config.timeout_s, silent=True, console="off")


def open_logger(
    config: WandbConfig,
    save_dir: Path,
    *,
    name: str,
    group: str,
    tags: list[str],
    run_config: dict[str, Any],
    cell_dir: Path | None = None,
    resume: bool = False,
    job_type: str = "train",
) -> tuple[Any | None, str | None]:
    """A started WandbLogger, or (None, why not) when W&B is off or could not start.

    When online mode cannot start (no network, a bad key), the run goes offline instead
    and so does every later run of this `config` (its mode is set to offline): the
    timeout is waited out once per sweep, not once per cell. The note says so.
    """
    mode = active_mode(config)
    if mode is None:
        return None, "disabled"
    run = {"name": name, "group": group, "tags": tags, "config": run_config, "job_type": job_type}
    if cell_dir is not None:  # the same id again continues that run (an interrupted cell)
        run.update(id=run_id(cell_dir, resume), resume="allow")
    logger, note = _start(config, mode, save_dir, run)
    if logger is None and mode == "online":
        log.warning(
            "%s; this and the remaining cells of the sweep log offline (upload them later "
            "with `wandb sync`)",
            note,
        )
        config.mode = "offline"
        logger, offline_note = _start(config, "offline", save_dir, run)
        note += "; logged offline instead" + (
            f", which failed too: {offline_note}" if offline_note else ""
        )
    return logger, note


def _start(
    config: WandbConfig, mode: str, save_dir: Path, run: dict[str, Any]
) -> tuple[Any | None, str | None]:
    """A WandbLogger for `run` (its name, group, tags and config) started in `mode`."""
    from pytorch_lightning.loggers import WandbLogger

    save_dir.mkdir(parents=True, exist_ok=True)
    logger = WandbLogger(
        project=config.project,
        save_dir=str(save_dir),
        mode=mode,
        settings=run_settings(config),
        **run,
    )
    # Lightning passes anonymous=None to wandb.init, which then warns on every run that
    # the setting has no effect; leaving it out changes nothing else
    getattr(logger, "_wandb_init", {}).pop("anonymous", None)
    try:
        run_bounded(lambda: logger.experiment, config.timeout_s + 5, "vidbench-wandb-init")
    except Exception as error:  # no network, bad key: the benchmark goes on without W&B
        if mode != "online":
            log.warning("W&B (%s) did not start, going on without it: %s", mode, error)
        return None, f"W&B {mode} did not start: {error}"
    return logger, None


def finish(logger: Any | None, summary: dict[str, Any], timeout: float) -> None:
    """Write `summary` to the run and finish it within `timeout` s (a warning if not)."""
    if logger is None:
        return None

    def close() -> None:
        logger.experiment.summary.update(summary)
        logger.experiment.finish()

    try:
        run_bounded(close, timeout, "vidbench-wandb-finish")
    except Exception as error:
        log.warning("W&B finish failed (the results file is already written): %s", error)


def sweep_group(config: WandbConfig, sweep_name: str, out: Path) -> str:
    """The W&B group of a sweep's runs: `wandb.group` when set, else the sweep's name and
    its output folder (`smoke-results/smoke`), so that `--set` variants written to other
    folders are other groups."""
    if config.group:
        return config.group
    return f"{sweep_name}-{out}"[-128:]  # W&B's limit


def run_id(cell_dir: Path, resume: bool) -> str:
    """The W&B run id of a cell, kept in `cell_dir/wandb_run_id`: the stored one when the
    cell `resume`s (an interrupted cell continues its run), else a new one."""
    path = cell_dir / "wandb_run_id"
    if resume and path.is_file():
        stored = path.read_text().strip()
        if re.fullmatch(r"[a-z0-9]{8,64}", stored):
            return stored
    new = secrets.token_hex(4)
    atomic_write_text(path, new + "\n")
    return new


def log_tables(
    config: WandbConfig,
    save_dir: Path,
    group: str,
    tables: dict[str, tuple[list, list]],
    tags: list[str] = (),
) -> None:
    """Leaderboards as W&B Tables ({name: (columns, rows)}) in a run of their own, grouped
    with the sweep's cells and tagged with `tags` (the sweep's; a warning if that failed)."""
    mode = active_mode(config)
    if mode is None:
        return
    import wandb

    def publish() -> None:
        run = wandb.init(
            project=config.project,
            name=f"{group}-leaderboard",
            group=group,
            job_type="leaderboard",
            tags=list(tags),
            dir=str(save_dir),
            mode=mode,
            settings=run_settings(config),
        )
        for name, (columns, rows) in tables.items():  # "scratch, from imagenet" ->
            key = re.sub(r"[^A-Za-z0-9+]+", "_", name)  # "scratch_from_imagenet"
            run.log({f"leaderboard/{key}": wandb.Table(columns=columns, data=rows)})
        run.finish()

    try:
        run_bounded(publish, 2 * config.timeout_s, "vidbench-wandb-table")
    except Exception as error:
        log.warning("W&B leaderboard table not logged: %s", error)
