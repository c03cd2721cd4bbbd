"""A real single-node SLURM cluster for the launcher's tests: Debian's `slurm-wlm` and
`munge` daemons started in a temporary folder, on free ports, and stopped after.

    with single_node_cluster(tmp_path) as env:   # {"SLURM_CONF": ...}
        subprocess.run(["sbatch", ...], env={**os.environ, **env})

`missing()` says what is lacking to start one (None when it can start): the binaries, or
root (slurmd launches jobs as their user). `.ci/run` installs the packages.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

DAEMONS = ("munged", "slurmctld", "slurmd")
CLIENTS = ("sbatch", "squeue", "scancel", "sinfo")
STARTUP_S = 120  # generous: a busy CI host registers the node in seconds


def _find(name: str) -> str | None:
    return shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")


def missing() -> str | None:
    """Why a cluster cannot start here (None: it can)."""
    absent = [name for name in (*DAEMONS, *CLIENTS) if _find(name) is None]
    if absent:
        return f"{', '.join(absent)} not installed (Debian: apt-get install slurm-wlm munge)"
    if os.geteuid() != 0:
        return "slurmd must run as root to launch jobs"
    return None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _node_line() -> tuple[str, int]:
    """This host's node name and CPU count, as slurmd sees them (`slurmd -C`)."""
    first = subprocess.run(
        [_find("slurmd"), "-C"], capture_output=True, text=True, check=True
    ).stdout.split()
    fields = dict(item.split("=", 1) for item in first if "=" in item)
    return fields["NodeName"], int(fields["CPUs"])


@contextmanager
def single_node_cluster(root: Path) -> Iterator[dict[str, str]]:
    """Start munged, slurmctld and slurmd under `root`; yields the environment clients need
    (SLURM_CONF); stops them all on the way out."""
    root = Path(root)
    for folder in ("munge", "state", "spool", "log"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    (root / "munge").chmod(0o700)
    key = root / "munge" / "munge.key"
    key.write_bytes(os.urandom(1024))
    key.chmod(0o400)
    sock = root / "munge" / "socket"
    node, cpus = _node_line()
    conf = root / "slurm.conf"
    conf.write_text(
        "\n".join(
            [
                "ClusterName=vidbench-test",
                f"SlurmctldHost={node}",
                "AuthType=auth/munge",
                "CredType=cred/munge",
                f"AuthInfo=socket={sock}",
                "SlurmUser=root",
                "SlurmdUser=root",
                f"StateSaveLocation={root / 'state'}",
                f"SlurmdSpoolDir={root / 'spool'}",
                f"SlurmctldPidFile={root / 'slurmctld.pid'}",
                f"SlurmdPidFile={root / 'slurmd.pid'}",
                f"SlurmctldLogFile={root / 'log' / 'slurmctld.log'}",
                f"SlurmdLogFile={root / 'log' / 'slurmd.log'}",
                f"SlurmctldPort={_free_port()}",
                f"SlurmdPort={_free_port()}",
                # no cgroups, no accounting database: what a container can run
                "ProctrackType=proctrack/linuxproc",
                "TaskPlugin=task/none",
                "JobAcctGatherType=jobacct_gather/none",
                "AccountingStorageType=accounting_storage/none",
                "JobCompType=jobcomp/none",
                "SchedulerType=sched/backfill",
                "SelectType=select/cons_tres",
                "SelectTypeParameters=CR_Core",
                "ReturnToService=2",
                "MpiDefault=none",
                "KillWait=2",  # a job told to stop (requeued, cancelled) is killed 2 s later
                f"NodeName={node} CPUs={cpus} State=UNKNOWN",
                f"PartitionName=test Nodes={node} Default=YES MaxTime=INFINITE State=UP",
            ]
        )
        + "\n"
    )
    env = {"SLURM_CONF": str(conf)}
    full_env = {**os.environ, **env}
    started: list[Path] = []
    try:
        subprocess.run(
            [
                _find("munged"),
                f"--key-file={key}",
                f"--socket={sock}",
                "--force",
                f"--log-file={root / 'log' / 'munged.log'}",
                f"--pid-file={root / 'munge.pid'}",
                f"--seed-file={root / 'munge' / 'seed'}",
            ],
            check=True,
            env=full_env,
        )
        started.append(root / "munge.pid")
        for daemon in ("slurmctld", "slurmd"):
            subprocess.run([_find(daemon), "-f", str(conf)], check=True, env=full_env)
            started.append(root / f"{daemon}.pid")
        deadline = time.monotonic() + STARTUP_S
        while True:
            states = subprocess.run(
                ["sinfo", "-h", "-o", "%T"], capture_output=True, text=True, env=full_env
            ).stdout.split()
            if "idle" in states:
                break
            if time.monotonic() > deadline:
                logs = "\n".join(
                    p.read_text()[-2000:] for p in sorted((root / "log").glob("*.log"))
                )
                raise RuntimeError(f"the test cluster did not come up (sinfo: {states})\n{logs}")
            time.sleep(0.5)
        yield env
    finally:
        if started:  # end the jobs first: slurmd leaves running steps behind
            subprocess.run(
                ["scancel", "--full", "-u", "root"], env=full_env, check=False, capture_output=True
            )
        for pid_file in reversed(started):
            with suppress(OSError, ValueError, IndexError):
                os.kill(int(pid_file.read_text().split()[0]), signal.SIGTERM)
