"""Reads W&B offline runs (<dir>/wandb/offline-run-*/run-<id>.wandb) with wandb's own record definitions.

wandb 0.31 has no Python reader any more (its datastore moved into the Go wandb-core, which `wandb sync` runs);
the file is a LevelDB-style log of wandb.proto Record messages, whose framing (checked against each chunk's crc32)
salsa.train.wandb_log reads; every record is decoded by wandb's protobuf classes.
`OfflineApi` offers these runs in the shape of the public API's (wandb.Api().runs(project)), for
analysis.wandb_source; a run's files are those its Files records name, as `wandb sync` uploads them from the
offline run's files/ directory."""
import json
import os
import shutil
from pathlib import Path

from wandb.proto import wandb_internal_pb2 as pb

from salsa.train.wandb_log import payloads


def subprocess_env(**overrides: str) -> dict:
    """This process's environment for a run.py subprocess, without WANDB_SERVICE: a test that ran wandb in this
    process (test_configs_and_logging) leaves it set, and the child would then share that wandb service."""
    return {**{k: v for k, v in os.environ.items() if k != "WANDB_SERVICE"}, "OMP_NUM_THREADS": "1", **overrides}


def records(path: Path) -> list:
    """Every Record in a .wandb file, in order (the framing: salsa.train.wandb_log)."""
    return [pb.Record.FromString(payload) for payload in payloads(path.read_bytes())]


def _value(item):
    """A HistoryItem / SummaryItem / ConfigItem's value (wandb writes value_json, or one typed field)."""
    if item.value_json:
        return json.loads(item.value_json)
    field = item.WhichOneof("value") if item.DESCRIPTOR.oneofs_by_name.get("value") else None
    return getattr(item, field) if field and field != "none" else None


def _put(into: dict, items) -> dict:
    """Sets each item's value at its key (a nested_key as nested dicts, as the public API shows them)."""
    for item in items:
        *parents, last = item.nested_key or [item.key]
        target = into
        for key in parents:
            target = target.setdefault(key, {})
        target[last] = _value(item)
    return into


class OfflineFile:
    """A run file as the public API's File: name, size, download(root, replace, exist_ok)."""

    def __init__(self, path: Path, name: str):
        self.path, self.name = path, name
        self.size = path.stat().st_size

    def download(self, root: str = ".", replace: bool = False, exist_ok: bool = False):
        target = Path(root) / self.name
        if target.exists() and not replace:
            if exist_ok:
                return open(target)
            raise ValueError(f"{target} already exists, pass replace=True to overwrite")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(self.path, target)  # follows the symlink wandb.save leaves in files/
        return open(target)


class OfflineRun:
    """One offline W&B run: id, state, config, summary, scan_history() and files(), as the public API's Run."""

    def __init__(self, path: Path):
        self.config, self.summary, self.history, self.file_names = {}, {}, [], []
        self.id, exit_code, self.files_dir = None, None, path.parent / "files"
        for record in records(path):
            kind = record.WhichOneof("record_type")
            if kind == "run":
                self.id = record.run.run_id
                _put(self.config, record.run.config.update)
            elif kind == "config":
                _put(self.config, record.config.update)
            elif kind == "history":
                self.history.append(_put({}, record.history.item))
            elif kind == "summary":
                _put(self.summary, record.summary.update)
            elif kind == "files":
                self.file_names += [item.path for item in record.files.files]
            elif kind == "exit":
                exit_code = record.exit.exit_code
        self.state = "running" if exit_code is None else "finished" if exit_code == 0 else "failed"

    def scan_history(self):
        return iter(self.history)

    def files(self, names: list[str] | None = None) -> list[OfflineFile]:
        return [OfflineFile(self.files_dir / name, name) for name in self.file_names if not names or name in names]


class OfflineApi:
    """wandb.Api()'s runs(project) over the offline runs under the given directories."""

    def __init__(self, *roots: Path):
        self.paths = sorted(p for root in roots for p in root.rglob("offline-run-*/run-*.wandb"))

    def runs(self, project: str) -> list[OfflineRun]:
        return [OfflineRun(p) for p in self.paths]
