"""The paper's experiments as sweeps: grid data (experiments/grids/*.yaml) -> Hydra multiruns of run.py.

`python -m experiments.reproduce --tier paper|cpu [--dry-run]`; see experiments/README.md.
"""
