"""vidbench: the architecture-comparison benchmark suite of Quo Vadis (CVPR 2017).

The repository's `bench/`, `models/` and `datasets/` folders install as `vidbench.bench`
(runner, sweeps, leaderboard, command line), `vidbench.models` (the networks and their
`VideoClassifier`) and `vidbench.datasets` (the data layer); `python -m vidbench` is the
`vidbench` command.
"""

from importlib import metadata

try:
    __version__ = metadata.version("vidbench")
except metadata.PackageNotFoundError:  # imported from a checkout that is not installed
    __version__ = "0+unknown"
