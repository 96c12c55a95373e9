"""Entry point: `python run.py [group=option ...] [key=value ...] [--multirun]`. See conf/config.yaml.
Multi-GPU: `torchrun --nproc_per_node=N run.py ...` (docs/cluster.md); rank 0 writes and prints."""
import os
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from salsa.registry import UserError


def writable_dir(path: str) -> str:
    """Resolver for hydra.run.dir: a clear error (exit 2), before Hydra writes its logs there, when paths.root is not writable."""
    try:
        os.makedirs(path, exist_ok=True)
        probe = os.path.join(path, f".write_probe_{os.getpid()}")
        open(probe, "w").close()
        os.remove(probe)
    except OSError as e:
        print(f"error: cannot write to {path} ({e.strerror}). Choose a writable place with paths.root=/some/writable/dir",
              file=sys.stderr)
        raise SystemExit(2) from None
    return path


OmegaConf.register_new_resolver("writable_dir", writable_dir)
CONF = Path(__file__).resolve().parent / "conf"


def execute(cfg: DictConfig, on_phase=None) -> None:
    """One run of the composed config: its summary printed, or its error as one line and the exit status."""
    from salsa.train.schema import validate

    try:
        validate(cfg)  # the one check of every value, before torch is imported: a bad value costs well under a second
        from salsa.train.runner import run  # after Hydra has parsed the command line: `--help` stays fast
        summary, run_dir, trained = run(cfg, on_phase=on_phase)
    except UserError as e:
        where = f" (rank {os.environ['RANK']})" if int(os.environ.get("WORLD_SIZE", "1")) > 1 else ""
        print(f"error{where}: {e}", file=sys.stderr)
        if HydraConfig.get().mode == RunMode.MULTIRUN:
            raise  # the launcher records this job as failed and runs the rest of the sweep
        sys.exit(e.exit_code)
    except KeyboardInterrupt as e:  # Ctrl-C or SIGTERM before training started: nothing half-written
        print("error: interrupted before training started", file=sys.stderr)
        sys.exit(128 + (e.args[0] if e.args else 2))
    if int(os.environ.get("RANK", "0")) > 0:  # torchrun: rank 0 prints the summary
        return
    m, t = summary["metrics"], summary["totals"]
    print(f"{summary['task']} / {summary['optimizer']} / seed {summary['seed']}: {summary['status']}"
          f"{'' if trained else ' earlier (same config and seed: nothing to do)'} "
          f"in {t['wall_time_s']:.1f} s, {t['steps']} steps ({t['forwards']} forwards, {t['backwards']} backwards)\n"
          f"  final train loss {m['final_train_loss']:.4g}, val acc {m['val_acc_final']:.4f} (peak {m['val_acc_peak']:.4f}), "
          f"val loss {m['val_loss_final']:.4g}"
          + (f", test acc {m['test_acc_final']:.4f}" if m["test_acc_final"] is not None else "")
          + f"\n  run directory: {run_dir.resolve()}  (summary.json, metrics.jsonl, config.yaml, checkpoint.pt)")


def cli(on_phase=None) -> None:
    """The command line: unknown keys are refused before Hydra composes, then `execute` runs each composed config.
    `on_phase`: the training loop's phase hook (tests/faulty_run.py hands in a fault there)."""
    from salsa.train.keys import refuse_unknown_keys
    try:
        refuse_unknown_keys(sys.argv[1:], CONF)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(e.exit_code)
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:  # torchrun: Hydra's output directory and log on rank 0 only
        from salsa.train.distributed import quiet_hydra_overrides
        sys.argv += quiet_hydra_overrides()

    def main(cfg: DictConfig) -> None:
        execute(cfg, on_phase)
    hydra.main(version_base="1.3", config_path=str(CONF), config_name="config")(main)()


if __name__ == "__main__":
    cli()
