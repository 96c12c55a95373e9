"""Entry point: `python run.py [group=option ...] [key=value ...] [--multirun]`. See conf/config.yaml."""
import sys

import hydra
from omegaconf import DictConfig

from salsa.registry import UserError


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def main(cfg: DictConfig) -> None:
    from salsa.train.runner import run  # after Hydra has parsed the command line: `--help` stays fast

    try:
        summary, run_dir, trained = run(cfg)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    m, t = summary["metrics"], summary["totals"]
    print(f"{summary['task']} / {summary['optimizer']} / seed {summary['seed']}: {summary['status']}"
          f"{'' if trained else ' earlier (same config and seed: nothing to do)'} "
          f"in {t['wall_time_s']:.1f} s, {t['steps']} steps ({t['forwards']} forwards, {t['backwards']} backwards)\n"
          f"  final train loss {m['final_train_loss']:.4g}, val acc {m['val_acc_final']:.4f} (peak {m['val_acc_peak']:.4f}), "
          f"val loss {m['val_loss_final']:.4g}"
          + (f", test acc {m['test_acc_final']:.4f}" if m["test_acc_final"] is not None else "")
          + f"\n  run directory: {run_dir.resolve()}  (summary.json, metrics.jsonl, config.yaml, checkpoint.pt)")


if __name__ == "__main__":
    main()
