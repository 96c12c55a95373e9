"""conf/hydra/launcher/slurm.yaml composes into the submitit launcher with requeue settings; values come from
overrides, else the environment, else the defaults; reproduce passes the grid's and the user's SLURM settings.
(A real cluster: test_slurm_cluster.py, opt-in.)"""
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from experiments.reproduce.grid import CONF
from hydra_plugins.salsa_launchers.slurm import _task_ids


def launcher_cfg(*overrides):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("config", overrides=["hydra/launcher=slurm", *overrides], return_hydra_config=True)
    return cfg, OmegaConf.to_container(cfg.hydra.launcher, resolve=True)


def test_overrides_then_environment_then_defaults(monkeypatch):
    for name in ("PARTITION", "GPUS", "TIME_MIN", "ACCOUNT"):
        monkeypatch.delenv(f"SALSA_SLURM_{name}", raising=False)
    _, params = launcher_cfg()
    assert (params["partition"], params["gpus_per_node"], params["timeout_min"]) == (None, 1, 1440)
    monkeypatch.setenv("SALSA_SLURM_PARTITION", "gpu-long")
    monkeypatch.setenv("SALSA_SLURM_GPUS", "4")
    monkeypatch.setenv("SALSA_SLURM_TIME_MIN", "600")
    _, params = launcher_cfg()
    assert (params["partition"], params["gpus_per_node"], params["timeout_min"]) == ("gpu-long", 4, 600)
    cfg, params = launcher_cfg("hydra.launcher.partition=a100", "hydra.launcher.gpus_per_node=8", "hydra.launcher.timeout_min=30")
    assert (params["partition"], params["gpus_per_node"], params["timeout_min"]) == ("a100", 8, 30)
    # requeue: submitit re-submits a preempted or timed-out job; run.py resumes it from its checkpoint
    assert params["max_num_timeout"] > 0 and params["signal_delay_s"] > 0
    assert params["_target_"] == "hydra_plugins.salsa_launchers.slurm.SlurmLauncher"
    assert cfg.hydra.callbacks.sweep_failures._target_ == "hydra_plugins.salsa_launchers.failures.SweepFailures"


def test_the_launcher_instantiates_and_has_the_requeue_hook():
    from hydra.utils import instantiate
    from hydra_plugins.hydra_submitit_launcher.submitit_launcher import SlurmLauncher

    cfg, _ = launcher_cfg("hydra.launcher.partition=gpu")
    launcher = instantiate(cfg.hydra.launcher)                       # as Hydra builds it, without submitting
    # ours, a submitit launcher (Hydra's plugin scan loads plugin modules afresh: classes compared by name)
    names = [f"{c.__module__}.{c.__name__}" for c in type(launcher).__mro__]
    assert names[0] == "hydra_plugins.salsa_launchers.slurm.SlurmLauncher" and f"{SlurmLauncher.__module__}.SlurmLauncher" in names
    assert launcher.params["partition"] == "gpu"
    assert callable(launcher.checkpoint)     # submitit calls it on USR2: DelayedSubmission = the job is requeued


def test_a_cpu_partition_is_one_override():
    _, params = launcher_cfg("hydra/launcher=slurm_cpu")
    assert (params["gpus_per_node"], params["cpus_per_task"], params["mem_gb"]) == (0, 1, 2)
    assert params["_target_"] == "hydra_plugins.salsa_launchers.slurm.SlurmLauncher"   # Hydra takes launchers from there only


def test_reproduce_passes_the_grids_and_the_users_slurm_settings(tmp_path, run_cli):
    status, out, _ = run_cli("--tier", "cpu", "--dry-run", "--root", tmp_path, "--launcher", "slurm", "--slurm", "partition=debug")
    commands = [line for line in out.splitlines() if "--multirun" in line]
    assert status == 0 and commands and all("hydra/launcher=slurm " in c and "hydra.launcher.gpus_per_node=0" in c
                                            and c.endswith("hydra.launcher.partition=debug") for c in commands)
    status, _, err = run_cli("--tier", "cpu", "--dry-run", "--launcher", "slurm", "--slurm", "partitoin=debug")
    assert status == 2 and "unknown SLURM setting(s) partitoin" in err
    status, _, err = run_cli("--tier", "cpu", "--dry-run", "--slurm", "partition=debug")
    assert status == 2 and "add --launcher slurm" in err


def test_pending_array_ranges_are_expanded():
    assert _task_ids("12_[0-2,5%4]") == ["12_0", "12_1", "12_2", "12_5"] and _task_ids("12_3") == ["12_3"]
