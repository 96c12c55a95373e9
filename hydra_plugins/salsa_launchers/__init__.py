"""Hydra takes launchers only from the hydra_plugins namespace: conf/hydra/launcher/slurm.yaml's launcher is defined
here, its code is experiments/reproduce/slurm.py."""
from experiments.reproduce import slurm


class SlurmLauncher(slurm.SlurmLauncher):
    """hydra-submitit-launcher's SLURM launcher that waits for every task and reports SLURM's reasons."""
