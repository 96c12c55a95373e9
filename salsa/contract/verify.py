"""What a finished run vouches for, and the check of it: `python -m salsa.contract.verify <runs dir>` prints every
run directory whose files do not match its summary.json (exit 1 if any), with the command that runs it again.

A finished summary.json records under "files" the sha256, size and (metrics.jsonl) line count of each file it
vouches for, and every summary carries "digest", the sha256 of its own content, so an edited summary is seen. A
run directory is named by the hash of the config.yaml inside it. run.py checks all of it before it skips a
finished run, the sweep's plan before it counts one as done, and the analysis before it averages one
(docs/run-directory.md)."""
from __future__ import annotations

import argparse
import hashlib
import json
import shlex
import sys
from numbers import Real
from pathlib import Path

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException
from yaml import YAMLError

from salsa.contract.files import CHECKPOINT, CONFIG, METRICS, NAMES, STEP_LOSSES, SUMMARY, NotPlain, not_plain, open_plain, read_plain
from salsa.contract.runid import LARGEST_SEED, config_hash

VOUCHED = (CHECKPOINT, METRICS, STEP_LOSSES)
COUNTED = (METRICS,)  # files whose line count is recorded too (the count a person can check by eye)
SMALL = (METRICS, STEP_LOSSES)  # the records the analysis reads: small, hashed at every check
STATUSES = ("running", "finished", "failed", "interrupted")


def record(path: Path, *, hashed: bool = True) -> dict:
    """sha256 (unless not hashed), size and (metrics.jsonl) line count of a plain file of the run directory."""
    digest, size, lines = hashlib.sha256(), 0, 0
    with open_plain(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            if hashed:
                digest.update(block)
            size, lines = size + len(block), lines + block.count(b"\n")
    return {**({"sha256": digest.hexdigest()} if hashed else {}), "bytes": size,
            **({"lines": lines} if path.name in COUNTED else {})}


def vouch(run_dir: Path) -> dict:
    """The "files" record of a finished summary: each file's record and its modification time (which lets a cheap
    check skip the hash of a file untouched since)."""
    return {name: {**record(run_dir / name), "mtime_ns": (run_dir / name).stat().st_mtime_ns}
            for name in VOUCHED if (run_dir / name).exists()}


def digest_of(summary: dict) -> str:
    """sha256 of the summary's canonical JSON, its "digest" left out."""
    rest = {key: value for key, value in summary.items() if key != "digest"}
    return hashlib.sha256(json.dumps(rest, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def sealed(summary: dict) -> dict:
    """The summary with its digest, as run.py writes it."""
    return {**summary, "digest": digest_of(summary)}


def _number(value) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool)


def _text(value) -> bool:
    return isinstance(value, str)


TYPES = {  # field -> (check, what it must be); a field may be absent here (the analysis requires its own)
    "status": (lambda v: v in STATUSES, " | ".join(STATUSES)),
    "run_id": (_text, "text"), "config_hash": (lambda v: v is None or _text(v), "text or null"),
    "task": (_text, "text"), "dataset": (lambda v: v is None or _text(v), "text or null"),
    "model": (lambda v: v is None or _text(v), "text or null"), "optimizer": (_text, "text"),
    "lr_choice": (lambda v: v is None or _text(v), "text or null"), "lr": (lambda v: v is None or _number(v), "a number or null"),
    "seed": (lambda v: isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= LARGEST_SEED,
             f"an integer from 0 to {LARGEST_SEED}"),
    "epochs": (lambda v: v is None or (isinstance(v, int) and not isinstance(v, bool)), "an integer or null"),
    "world_size": (lambda v: isinstance(v, int) and not isinstance(v, bool), "an integer"),
    "metrics": (lambda v: isinstance(v, dict) and all(x is None or _number(x) for x in v.values()),
                "an object of numbers or nulls"),
    "totals": (lambda v: isinstance(v, dict) and all(x is None or _number(x) for x in v.values()),
               "an object of numbers or nulls"),
    "env": (lambda v: isinstance(v, dict), "an object"), "error": (lambda v: v is None or _text(v), "text or null"),
    "files": (lambda v: isinstance(v, dict), "an object"), "digest": (_text, "text"),
}


def malformed(summary) -> str | None:
    """What is wrong with a summary's fields (a type, a value), in words; None when every field present is right."""
    if not isinstance(summary, dict):
        return f"summary.json holds {type(summary).__name__}, not an object"
    for key, (check, what) in TYPES.items():
        if key in summary and not check(summary[key]):
            shown = json.dumps(summary[key])
            return f"summary.json's {key} is {shown if len(shown) <= 40 else shown[:37] + '...'}, not {what}"
    return None


def _record_shape(name: str, want) -> bool:
    keys = {"sha256", "bytes", *(["lines"] if name in COUNTED else [])}
    return (isinstance(want, dict) and set(want) - {"mtime_ns"} == keys and _text(want["sha256"])
            and all(isinstance(want[k], int) and not isinstance(want[k], bool) for k in set(want) - {"sha256"}))


def _described(r: dict) -> str:
    return ", ".join([*([f"{r['lines']} lines"] if "lines" in r else []), f"{r['bytes']} bytes",
                      *([f"sha256 {r['sha256'][:12]}"] if "sha256" in r else [])])


def damage(run_dir: Path, summary: dict, *, hashed=VOUCHED) -> dict[str, str]:
    """file name (always one of the run directory's own names) -> how it differs from what the summary says: a
    summary with fields of the wrong type, edited since it was written, or vouching for a file a run does not have
    (its "files" may only name checkpoint.pt, metrics.jsonl, train_loss.f32: the summary is the damaged file then);
    a file that is not a plain file (never followed or opened); a vouched file missing or different. The files in
    `hashed` are hashed (the analysis and run.py: all of them); the others by size and line count, and hashed too
    unless their modification time is the one the summary recorded (the sweep's cheap check). Empty when every file
    matches, and for summaries written before files were recorded."""
    if run_dir.is_symlink():  # its files would live elsewhere
        return {SUMMARY: f"{run_dir} is a symbolic link, not a run directory"}
    problems = {name: f"{name} is {kind}, not a plain file" for name in NAMES if (kind := not_plain(run_dir / name))}
    if (what := malformed(summary)) is not None:
        return {**problems, SUMMARY: what}
    if "digest" in summary and summary["digest"] != digest_of(summary):
        problems[SUMMARY] = "summary.json was edited after the run wrote it (its digest does not match its content)"
    for name, want in (summary.get("files") or {}).items():
        if name not in VOUCHED:
            problems[SUMMARY] = (f"summary.json vouches for {json.dumps(name)[:60]}, which is not a file of a run "
                                 f"({', '.join(VOUCHED)})")
        elif not _record_shape(name, want):
            problems[SUMMARY] = f"summary.json's record of {name} is not {{sha256, bytes{', lines' if name in COUNTED else ''}}}"
        elif name in problems:
            continue
        elif not (run_dir / name).exists():
            problems[name] = f"{name} is missing"
        else:
            untouched = want.get("mtime_ns") == (run_dir / name).stat().st_mtime_ns
            got = record(run_dir / name, hashed=name in hashed or not untouched)
            if got != {k: v for k, v in want.items() if k in got}:
                problems[name] = f"{name} has {_described(got)} where summary.json says {_described(want)}"
    return problems


def hash_of_config(path: Path) -> str:
    """config_hash of a config.yaml as run.py wrote it (resolved: an interpolation is refused, never resolved);
    FileNotFoundError, NotPlain or ValueError."""
    cfg = OmegaConf.create(read_plain(path).decode("utf-8"))
    if not isinstance(cfg, DictConfig) or any("${" in text for text in _strings(OmegaConf.to_container(cfg, resolve=False))):
        raise ValueError(f"{path} is not a resolved config")
    return config_hash(cfg)


def _strings(node):
    if isinstance(node, dict):
        node = list(node.values())
    if isinstance(node, list):
        for item in node:
            yield from _strings(item)
    elif isinstance(node, str):
        yield node


def identity(run_dir: Path, summary: dict) -> str | None:
    """Why the directory is not the run its config says (renamed, or copied from another config's), or None: its
    name must be the first 12 hex digits of the hash of its config.yaml, and the summary's run_id and config_hash
    that hash. A summary rebuilt from W&B (config_hash null, no config.yaml) is known by its run_id alone."""
    path = run_dir / CONFIG
    if summary.get("config_hash") is None and not path.exists():
        return None if summary.get("run_id") == run_dir.name else f"summary.json's run_id is not {run_dir.name}"
    try:
        full = hash_of_config(path)
    except FileNotFoundError:
        return f"{CONFIG} is missing, so nothing says which config this run is"
    except NotPlain:
        return f"{CONFIG} is {not_plain(path)}, not a plain file"
    except (UnicodeDecodeError, YAMLError, OmegaConfBaseException, ValueError, TypeError, AttributeError) as e:
        return f"{CONFIG} cannot be read ({type(e).__name__}), so nothing says which config this run is"
    if full[:12] != run_dir.name:
        return (f"the directory is named {run_dir.name} but its {CONFIG} hashes to {full[:12]} (renamed or copied from "
                f"another config's run); move it back to <runs>/{full[:12]} or away")
    if summary.get("run_id") != run_dir.name or summary.get("config_hash") not in (None, full):
        return f"summary.json names run {str(summary.get('run_id'))[:12]}, but the directory and its {CONFIG} are run {full[:12]}"
    return None


def rerun_command(summary: dict) -> str:
    """The command that made the run (a sweep's command runs only what is missing or damaged again)."""
    argv = (summary.get("env") or {}).get("argv") if isinstance(summary.get("env"), dict) else None
    if isinstance(argv, list) and all(_text(a) for a in argv) and argv:
        return f"python {shlex.join(argv)}"
    return "the command that made it (summary.json has no env.argv)"


def read(run_dir: Path) -> dict:
    """summary.json as it is on disk: FileNotFoundError, NotPlain, or ValueError (not UTF-8 JSON) when it cannot be read."""
    return json.loads(read_plain(run_dir / SUMMARY).decode("utf-8"))


def state(run_dir: Path) -> tuple[str, str]:
    """(ok | damaged | unfinished | unverified, what to say) for one run directory."""
    try:
        summary = read(run_dir)
    except FileNotFoundError:
        return "unfinished", "no summary.json: the same command starts it"
    except NotPlain:
        return "damaged", f"summary.json is {not_plain(run_dir / SUMMARY)}, not a plain file: remove or move it away"
    except (OSError, ValueError) as e:
        return "damaged", f"summary.json cannot be read ({e}); the same command runs it on"
    if (what := malformed(summary)) is not None or "status" not in summary:
        return "damaged", f"{what or 'summary.json is not a summary (no status)'}; the same command runs it on"
    if summary["status"] != "finished":
        return "unfinished", f"status {summary['status']}" + (f": {summary['error']}" if summary.get("error") else "")
    problems = list(damage(run_dir, summary).values())
    if (wrong := identity(run_dir, summary)) is not None:
        return "damaged", wrong
    if problems:
        return "damaged", f"{'; '.join(problems)}; run it again with: {rerun_command(summary)}"
    if "files" not in summary or "digest" not in summary:
        return "unverified", f"finished before summaries recorded their {'files' if 'files' not in summary else 'digest'}"
    return "ok", f"finished, {len(summary['files'])} files match"


def run_dirs(root: Path) -> list[Path]:
    return sorted({f.parent for pattern in (SUMMARY, *VOUCHED) for f in root.rglob(pattern)})


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m salsa.contract.verify", description=__doc__.split("\n\n")[0])
    parser.add_argument("root", type=Path, help="a runs folder (paths.runs, e.g. outputs/runs)")
    args = parser.parse_args(argv)
    if not args.root.is_dir():
        print(f"error: {args.root} is not a directory", file=sys.stderr)
        return 2
    counts: dict[str, int] = {}
    for run_dir in run_dirs(args.root):
        kind, what = state(run_dir)
        counts[kind] = counts.get(kind, 0) + 1
        print(f"{kind:<10} {run_dir}: {what}")
    total = sum(counts.values())
    print(f"{total} run director{'y' if total == 1 else 'ies'}: " + ", ".join(f"{n} {kind}" for kind, n in sorted(counts.items())))
    return 1 if counts.get("damaged") else 0


if __name__ == "__main__":
    from salsa.unforeseen import guarded
    sys.exit(guarded("python -m salsa.contract.verify", main))
