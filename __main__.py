"""`python -m vidbench`: the `vidbench` command."""

from vidbench.bench.cli import main

raise SystemExit(main())
