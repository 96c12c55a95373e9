"""Our Hydra launcher code. Hydra finds launchers only in the hydra_plugins namespace (which has no __init__.py of
its own) and imports every module here at startup, so each module imports only what it needs:
- slurm.py: the SLURM launcher of conf/hydra/launcher/slurm.yaml (needs hydra-submitit-launcher);
- failures.py: the callback of conf/hydra/launcher/{local,slurm}.yaml that records why a run of a sweep failed;
- resolvers.py: the config's ${writable_dir:...}, registered here so that every process that resolves the config has it.
"""
from . import resolvers  # noqa: F401
