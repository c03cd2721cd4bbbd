"""The built-in smoke sweep exactly as `vidbench run` runs it, then `vidbench regress`
against the committed baseline: the suite's own check of the paper's claim."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BASELINE = Path(__file__).resolve().parents[1] / "results" / "baselines" / "smoke.json"


def test_smoke_sweep_passes_its_sanity_check_and_its_baseline(smoke_run):
    out, run = smoke_run
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]
    assert "sanity check: PASSED" in run.stdout
    assert "10 cells finished, 0 failed" in run.stdout
    # stderr holds vidbench's own log only: no W&B, torch or Lightning notices by default
    foreign = [line for line in run.stderr.splitlines() if not line.startswith("INFO vidbench")]
    assert foreign == [], foreign
    assert "/ paper" not in (out / "leaderboard.md").read_text()  # no paper numbers on synthetic
    regress = subprocess.run(
        [sys.executable, "-m", "vidbench", "regress", "--baseline", str(BASELINE), str(out)],
        capture_output=True,
        text=True,
    )
    assert regress.returncode == 0, regress.stdout + regress.stderr
    assert "no regression in 10 cells" in regress.stdout
