"""`vidbench run`, `vidbench leaderboard` and `vidbench regress`."""

from __future__ import annotations

import argparse
import contextlib
import logging
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from vidbench.bench.commands import (
    NON_NEGATIVE,
    POSITIVE_INT,
    add_key_values,
    add_progress,
    unique_folders,
    wants_progress,
)
from vidbench.datasets.files import refuse_same_file

if TYPE_CHECKING:
    from vidbench.bench.config import SweepConfig
    from vidbench.bench.results import RunRecord

log = logging.getLogger("vidbench")


def add_commands(commands: argparse._SubParsersAction) -> None:
    add_run(commands)
    add_leaderboard(commands)
    add_regress(commands)


def add_run(commands: argparse._SubParsersAction) -> None:
    run = commands.add_parser("run", help="run a sweep (default: the built-in smoke sweep)")
    run.add_argument(
        "sweep",
        nargs="?",
        default=None,
        help="sweep YAML file or built-in name (smoke, diagnostic, table2, table2_kinetics, "
        "table4, table5, splits, transfer; default smoke)",
    )
    add_key_values(
        run, "--set", "override sweep keys, e.g. --set arch=[i3d,c3d] train.max_steps=200"
    )
    run.add_argument(
        "--out", type=Path, default=None, help="results folder (default results/<sweep>)"
    )
    run.add_argument(
        "--wandb",
        choices=("offline", "online", "disabled"),
        default=None,
        help="W&B mode (default: the sweep's, else $WANDB_MODE, else offline)",
    )
    run.add_argument(
        "--dry-run",
        action="store_true",
        help="print every resolved cell's config (YAML) and whether it would run, skip "
        "(finished with this config) or rerun; make, train and write nothing",
    )
    run.add_argument(
        "--launcher",
        choices=("inline", "local", "slurm"),
        default=None,
        help="where cells run: one after another in this process (inline), --jobs at a time "
        "in processes of their own (local), or as SLURM jobs through submitit (slurm, with "
        "the sweep's `launcher:` settings); default: the sweep's, else inline",
    )
    run.add_argument(
        "--jobs",
        type=POSITIVE_INT,
        default=None,
        help="local: cells at a time (default: one per GPU, else 1)",
    )
    run.add_argument(
        "--threads",
        type=POSITIVE_INT,
        default=None,
        help="torch threads per job (default: local, the cores divided between jobs; slurm, "
        "the job's CPUs)",
    )
    run.add_argument(
        "--no-wait",
        action="store_true",
        help="slurm: submit and return; the same command again follows the jobs (and "
        "submits only cells with neither a finished record nor a live job)",
    )
    add_progress(run)
    run.set_defaults(func=run_command)


def sweep_and_overrides(args: argparse.Namespace) -> tuple[str | None, list[str]]:
    """The sweep and the `--set` overrides. `--set` takes several values, so in
    `run --set arch=[c3d] smoke` it takes the sweep's name too: a value without `=` after
    the overrides is the sweep when none was named before them."""
    overrides = list(args.set)
    sweep = args.sweep
    while overrides and "=" not in overrides[-1] and sweep is None:
        sweep = overrides.pop()
    return sweep, overrides


def run_command(args: argparse.Namespace) -> int:
    from vidbench.bench.precheck import precheck

    sweep_name, overrides = sweep_and_overrides(args)
    # the mistakes that need no tensors, answered before torch and Lightning are imported
    precheck(sweep_name, overrides, None if args.dry_run else args.out, data=not args.dry_run)
    from pytorch_lightning.utilities import rank_zero_only

    from vidbench.bench.config import load_sweep
    from vidbench.bench.leaderboard import markdown
    from vidbench.bench.leaderboard_page import write_leaderboard
    from vidbench.bench.regress import motion_check
    from vidbench.bench.results import invocation, read_verdicts, record_verdict
    from vidbench.bench.runner import run_sweep

    sweep = load_sweep(sweep_name, overrides)
    if args.wandb:
        sweep.wandb.mode = args.wandb
    launcher = sweep.launcher
    for field, value in (("kind", args.launcher), ("jobs", args.jobs), ("threads", args.threads)):
        if value is not None:
            setattr(launcher, field, value)
    if args.no_wait:
        launcher.wait = False
    if args.jobs and launcher.kind != "local":
        raise ValueError(f"--jobs goes with --launcher local (the launcher is {launcher.kind})")
    if args.no_wait and launcher.kind != "slurm":
        raise ValueError(f"--no-wait goes with --launcher slurm (the launcher is {launcher.kind})")
    out = args.out or Path("results") / sweep.name
    if args.dry_run:
        return dry_run(sweep, out)
    try:
        with sigterm_as_interrupt():
            records = run_sweep(sweep, out, progress=wants_progress(args))
    except KeyboardInterrupt:
        jobs = {"local": " its jobs were stopped;", "slurm": " its SLURM jobs go on;"}
        print(
            f"vidbench: interrupted:{jobs.get(launcher.kind, '')} finished cells are recorded "
            f"in {out / 'runs.jsonl'} and an unfinished cell resumes from its last checkpoint: "
            "run the same command again to go on",
            file=sys.stderr,
        )
        return 130
    if rank_zero_only.rank != 0:  # DDP: the other ranks only helped train and test
        return 0
    if not launcher.wait:
        print(f"jobs submitted; follow them with the same command again (records: {out})")
        return 0
    print(markdown(records))
    print(
        f"records in {out / 'runs.jsonl'}; leaderboard in {out / 'leaderboard.md'} and "
        f"{out / 'leaderboard.html'}"
    )
    offline = out / "wandb" / "wandb"
    if any(offline.glob("offline-run-*")):
        print(f"W&B runs are offline in {offline}; upload: wandb sync {offline}/offline-run-*")
    failed = [r.cell for r in records if r.status != "ok"]
    code = 1 if failed else 0
    if failed:
        print(f"{len(failed)} cell(s) failed: {', '.join(failed)} (errors in runs.jsonl)")
    if sweep.expect_temporal_beats_frame_avg:
        passed, report = motion_check(records)
        print(
            "\nSanity check of the paper's claim (motion models beat frame_avg, which sees "
            "no motion and should sit near chance):\n" + report
        )
        verdict = {True: "PASSED", False: "FAILED", None: "NOT JUDGED"}[passed]
        print(f"sanity check: {verdict}")
        record_verdict(out, "sanity", verdict, report)
        write_leaderboard(
            records, out, f"vidbench sweep {sweep.name}", invocation(), read_verdicts(out)
        )
        code = code or (1 if passed is False else 0)
    return code


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Inside, SIGTERM (`kill`, a scheduler ending the run) stops the sweep as Ctrl-C does:
    the local launcher cancels its jobs and the interrupted cell keeps its checkpoint."""

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, interrupt)
    except ValueError:  # not the main thread: leave SIGTERM as it is
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def dry_run(sweep: SweepConfig, out: Path) -> int:
    """`run --dry-run`: each cell's resolved config as YAML, headed by its id and what a run
    would do with it, then the counts and the preflight (`bench.preflight`); exit status 1
    when the preflight finds problems (a run would fail those datasets' cells)."""
    import yaml

    from vidbench.bench.preflight import preflight
    from vidbench.bench.runner import plan_sweep

    plan = plan_sweep(sweep, out)
    for cell, action in plan:
        print(f"# {cell.id}: {action}")
        print(yaml.safe_dump(cell.model_dump(mode="json"), sort_keys=False), end="")
        print("---")
    counts = {a: sum(1 for _, done in plan if done == a) for a in ("run", "rerun", "skip")}
    print(
        f"# sweep {sweep.name}: {len(plan)} cells, {counts['run']} to run, {counts['rerun']} "
        f"to run again (config changed), {counts['skip']} finished; results would go to {out}"
    )
    checked = preflight(sweep, out)
    for line in checked.lines:
        print(f"# preflight: {line}")
    problems = list(dict.fromkeys(p for dataset in checked.problems.values() for p in dataset))
    for problem in problems:
        print(f"# preflight PROBLEM: {problem}")
    if problems:
        print(f"# {len(problems)} preflight problem(s): a run would fail those datasets' cells")
    return 1 if problems else 0


def add_leaderboard(commands: argparse._SubParsersAction) -> None:
    board = commands.add_parser("leaderboard", help="Markdown and HTML leaderboard of run folders")
    board.add_argument("dirs", nargs="+", type=Path, help="folders holding runs.jsonl")
    board.add_argument("--out", type=Path, default=None, help="output folder (default: the first)")
    board.add_argument("--title", default="vidbench leaderboard", help="page title")
    board.set_defaults(func=leaderboard_command)


def leaderboard_command(args: argparse.Namespace) -> int:
    from vidbench.bench.leaderboard import markdown
    from vidbench.bench.leaderboard_page import write_leaderboard
    from vidbench.bench.results import invocation, read_verdicts

    folders, records = merged_records(args.dirs)
    print(markdown(records))
    verdicts = read_verdicts(folders[0]) if len(folders) == 1 else {}  # a merge has none
    paths = write_leaderboard(records, args.out or args.dirs[0], args.title, invocation(), verdicts)
    print(f"wrote {paths['markdown']} and {paths['html']}")
    return 0


def merged_records(dirs: list[Path]) -> tuple[list[Path], list[RunRecord]]:
    """The folders (each once) and the latest record of each cell and configuration across
    them (`results.unique_records`); ValueError when there is none."""
    from vidbench.bench.results import unique_records

    folders = unique_folders(dirs)
    records = unique_records([r for d in folders for r in latest_records(d)])
    if not records:
        raise ValueError(f"no run records in {', '.join(map(str, dirs))}")
    return folders, records


def latest_records(directory: Path) -> list[RunRecord]:
    """The latest record of each cell in `directory`'s runs file (or that file)."""
    from vidbench.bench.results import RUNS_FILE, latest_by_cell, read_records

    if not (directory / RUNS_FILE).is_file() and not directory.is_file():
        raise FileNotFoundError(f"{directory}: no {RUNS_FILE} here")
    return list(latest_by_cell(read_records(directory)).values())


def add_regress(commands: argparse._SubParsersAction) -> None:
    regress = commands.add_parser("regress", help="compare runs with a stored accuracy baseline")
    regress.add_argument(
        "--baseline", required=True, type=Path, help="baseline JSON (--update writes it)"
    )
    regress.add_argument(
        "dir",
        nargs="?",
        type=Path,
        default=Path("results/smoke"),
        help="results folder (default: results/smoke)",
    )
    regress.add_argument(
        "--min-points",
        type=NON_NEGATIVE,
        default=2.0,
        help="smallest tolerance in top-1 points (else 2 std across baseline seeds)",
    )
    regress.add_argument(
        "--significance",
        action="store_true",
        help="fail a cell below its tolerance only when the drop is also significant (a "
        "two-sided 95%% test from the seeds' spread and the test videos' count); a cell that "
        "collapses to chance fails either way",
    )
    regress.add_argument("--update", action="store_true", help="write the baseline from DIR")
    regress.set_defaults(func=regress_command)


def regress_command(args: argparse.Namespace) -> int:
    from vidbench.bench.regress import (
        check_tolerance,
        compare,
        environment_changes,
        format_comparison,
        read_baseline,
        write_baseline,
    )
    from vidbench.bench.results import RUNS_FILE

    check_tolerance(args.min_points)
    records = latest_records(args.dir)
    if args.update:
        runs = args.dir / RUNS_FILE if args.dir.is_dir() else args.dir
        refuse_same_file(args.baseline, [runs], "--baseline")
        write_baseline(records, args.baseline)
        print(f"wrote baseline {args.baseline} from {len(records)} records in {args.dir}")
        return 0
    if not args.baseline.is_file():
        raise FileNotFoundError(f"{args.baseline}: no such baseline (make one with --update)")
    baseline = read_baseline(args.baseline)
    rows = compare(records, baseline, args.min_points, significance=args.significance)
    changed = environment_changes(baseline)
    if changed:
        log.warning(
            "the baseline was made with other package versions (%s); the synthetic data and "
            "the training numerics depend on them, so numbers can move without a code change",
            ", ".join(changed),
        )
    report = format_comparison(rows)
    print(report)
    regressed = any(row["regressed"] for row in rows)
    if args.dir.is_dir():  # the results folder's page shows the verdict
        from vidbench.bench.results import record_verdict

        verdict = "REGRESSED" if regressed else "PASSED"
        record_verdict(args.dir, "regress", verdict, report, baseline=str(args.baseline))
    return 1 if regressed else 0
