"""vidbench runner and command line: `vidbench` (also `python -m vidbench`)."""
