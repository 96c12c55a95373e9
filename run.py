"""Entry point: `python run.py [group=option ...] [key=value ...] [--multirun]`. See conf/config.yaml.
Multi-GPU: `torchrun --nproc_per_node=N run.py ...` (docs/cluster.md); rank 0 writes and prints."""
import logging
import os
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.errors import CompactHydraException, ConfigCompositionException, OverrideParseException
from hydra.types import RunMode
from omegaconf import DictConfig
from omegaconf.errors import OmegaConfBaseException

import hydra_plugins.salsa_launchers  # noqa: F401 - registers the config's ${writable_dir:...}
from salsa.registry import UserError
from salsa.unforeseen import EXIT, Reported, broken_pipe, guarded, one_line, report, say

ENTRY = "run.py"


CONF = Path(__file__).resolve().parent / "conf"


def execute(cfg: DictConfig, on_phase=None) -> None:
    """One run of the composed config: its summary printed, or its error as one line and the exit status."""
    from salsa.train.schema import validate

    where = f" (rank {os.environ['RANK']})" if int(os.environ.get("WORLD_SIZE", "1")) > 1 else ""
    try:
        validate(cfg)  # the one check of every value, before torch is imported: a bad value costs well under a second
        from salsa.train.runner import run  # after Hydra has parsed the command line: `--help` stays fast
        summary, run_dir, trained = run(cfg, on_phase=on_phase, wait=HydraConfig.get().mode == RunMode.MULTIRUN)
    except UserError as e:
        print(f"error{where}: {e}", file=sys.stderr)
        if HydraConfig.get().mode == RunMode.MULTIRUN and e.exit_code <= 128:
            raise  # the launcher records this job as failed and runs the rest of the sweep; a signal (128+n) ends it
        sys.exit(e.exit_code)
    except KeyboardInterrupt as e:  # Ctrl-C or SIGTERM before training started: nothing half-written
        print("error: interrupted before training started", file=sys.stderr)
        sys.exit(128 + (e.args[0] if e.args else 2))
    except Exception as e:  # noqa: BLE001 - the net: one line, the traceback in a file under paths.root
        line = report(e, ENTRY, lambda: [Path(cfg.paths.root)], prefix=f"error{where}")
        if HydraConfig.get().mode == RunMode.MULTIRUN:
            raise Reported(line) from None  # recorded as this job's failure; the sweep goes on
        sys.exit(EXIT)
    if int(os.environ.get("RANK", "0")) > 0:  # torchrun: rank 0 prints the summary
        return
    try:
        print_summary(summary, run_dir, trained)
    except BrokenPipeError:  # stdout closed early (`run.py | head -1`): the run's files are complete all the same
        line = broken_pipe(ENTRY, f"; the run {summary['status']}: {run_dir.resolve()}")
        if HydraConfig.get().mode == RunMode.MULTIRUN:
            raise Reported(line) from None
        sys.exit(1)


def print_summary(summary: dict, run_dir: Path, trained: bool) -> None:
    m, t = summary["metrics"], summary["totals"]
    print(f"{summary['task']} / {summary['optimizer']} / seed {summary['seed']}: {summary['status']}"
          f"{'' if trained else ' earlier (same config and seed: nothing to do)'} "
          f"in {t['wall_time_s']:.1f} s, {t['steps']} steps ({t['forwards']} forwards, {t['backwards']} backwards)\n"
          f"  final train loss {m['final_train_loss']:.4g}, val acc {m['val_acc_final']:.4f} (peak {m['val_acc_peak']:.4f}), "
          f"val loss {m['val_loss_final']:.4g}"
          + (f", test acc {m['test_acc_final']:.4f}" if m["test_acc_final"] is not None else "")
          + f"\n  run directory: {run_dir.resolve()}  (summary.json, metrics.jsonl, config.yaml, checkpoint.pt)", flush=True)


def sweep_failures() -> str:
    """The closing line of a multirun whose runs failed (each printed its own line when it failed)."""
    from hydra_plugins.salsa_launchers.failures import FAILURE_FILE
    try:
        sweep = Path(str(HydraConfig.get().sweep.dir))
        found = f": {len(list(sweep.rglob(FAILURE_FILE)))} {FAILURE_FILE} under {sweep}"
    except Exception:  # noqa: BLE001 - the sweep's folder is unknown: the lines above still say it all
        found = ""
    return f"runs of the sweep failed (each one's error is above){found}; the same command runs them again"


def hydra_error(e: Exception) -> int:
    """Hydra's and OmegaConf's errors outside a run (the command line, composing the config, Hydra's own output
    folder) as one line; the exit status."""
    if isinstance(e, (UserError, Reported)):  # a run of a multirun failed and printed its line
        say(f"error: {sweep_failures()}")
        return 1
    if isinstance(e, CompactHydraException):
        message = one_line(str(e).split("Config search path")[0])  # Hydra's list of where it looked: noise here
        say(f"error: {message}" + (f" ({one_line(e.__cause__)})" if isinstance(e.__cause__, OmegaConfBaseException) else ""))
        return 2 if isinstance(e, (ConfigCompositionException, OverrideParseException)) else 1
    if isinstance(e, OmegaConfBaseException):
        key = getattr(e, "full_key", None)
        say(f"error: {f'{key}: ' if key else ''}{one_line(str(e).splitlines()[0] if str(e) else type(e).__name__)}")
        return 2
    if isinstance(e, OSError) and e.filename:  # Hydra's output folder: hydra.run.dir, hydra.sweep.dir, paths.root
        say(f"error: cannot write {e.filename} ({e.strerror}): choose a writable place with paths.root=/some/writable/dir "
            "(or hydra.run.dir / hydra.sweep.dir)")
        return 2
    raise e


def root_argument() -> list[Path]:
    """paths.root as the command line gives it (where the net puts a traceback from outside a run)."""
    given = [a.split("=", 1)[1] for a in sys.argv[1:] if a.startswith("paths.root=")]
    return [Path(given[-1])] if given else []


def cli(on_phase=None) -> None:
    """The command line: checked before Hydra composes (salsa/train/keys.py), then `execute` runs each composed config.
    `on_phase`: the training loop's phase hook (tests/faulty_run.py hands in a fault there). Hydra raises its errors
    here (HYDRA_FULL_ERROR) instead of printing a traceback: each becomes one line, and what nobody foresaw the net's
    line and a traceback file (salsa/unforeseen.py)."""
    def main(cfg: DictConfig) -> None:
        execute(cfg, on_phase)

    def start() -> int:
        from salsa.train.keys import check_command_line
        try:
            check_command_line(sys.argv[1:], CONF)
        except UserError as e:
            print(f"error: {e}", file=sys.stderr)
            return e.exit_code
        if int(os.environ.get("WORLD_SIZE", "1")) > 1:  # torchrun: Hydra's output directory and log on rank 0 only
            from salsa.train.distributed import quiet_hydra_overrides
            sys.argv += quiet_hydra_overrides()
        os.environ["HYDRA_FULL_ERROR"] = "1"
        logging.raiseExceptions = False  # a log line to a closed stdout is dropped, not printed with a traceback
        try:
            hydra.main(version_base="1.3", config_path=str(CONF), config_name="config")(main)()
        except Exception as e:  # noqa: BLE001 - hydra_error re-raises what it does not know, to the net
            return hydra_error(e)
        return 0

    sys.exit(guarded(ENTRY, start, root_argument))


if __name__ == "__main__":
    cli()
