"""What a finished run vouches for, and the check of it: `python -m salsa.contract.verify <runs dir>` prints every
run directory whose files do not match its summary.json (exit 1 if any), with the command that runs it again.

A finished summary.json records under "files" the sha256, size and (metrics.jsonl) line count of each file it
vouches for; run.py checks them before it skips a finished run, and the analysis before it averages one
(docs/run-directory.md)."""
from __future__ import annotations

import argparse
import hashlib
import json
import shlex
import sys
from pathlib import Path

from salsa.contract.files import CHECKPOINT, METRICS, STEP_LOSSES, SUMMARY

VOUCHED = (CHECKPOINT, METRICS, STEP_LOSSES)
COUNTED = (METRICS,)  # files whose line count is recorded too (the count a person can check by eye)


def record(path: Path) -> dict:
    digest, size, lines = hashlib.sha256(), 0, 0
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
            size, lines = size + len(block), lines + block.count(b"\n")
    return {"sha256": digest.hexdigest(), "bytes": size, **({"lines": lines} if path.name in COUNTED else {})}


def vouch(run_dir: Path) -> dict:
    """The "files" record of a finished summary."""
    return {name: record(run_dir / name) for name in VOUCHED if (run_dir / name).exists()}


def _described(r: dict) -> str:
    return ", ".join([*([f"{r['lines']} lines"] if "lines" in r else []), f"{r['bytes']} bytes", f"sha256 {r['sha256'][:12]}"])


def damage(run_dir: Path, summary: dict) -> dict[str, str]:
    """file name -> how it differs from the summary's record (empty when every file matches, and for summaries
    written before files were recorded)."""
    problems = {}
    for name, want in (summary.get("files") or {}).items():
        path = run_dir / name
        if not path.exists():
            problems[name] = f"{name} is missing"
        elif (got := record(path)) != want:
            problems[name] = f"{name} has {_described(got)} where summary.json says {_described(want)}"
    return problems


def rerun_command(summary: dict) -> str:
    """The command that made the run (a sweep's command runs only what is missing or damaged again)."""
    argv = (summary.get("env") or {}).get("argv")
    return f"python {shlex.join(argv)}" if argv else "the command that made it (summary.json has no env.argv)"


def state(run_dir: Path) -> tuple[str, str]:
    """(ok | damaged | unfinished | unverified, what to say) for one run directory."""
    try:
        summary = json.loads((run_dir / SUMMARY).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return "unfinished", "no summary.json: the same command starts it"
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        return "damaged", f"summary.json cannot be read ({e}); the same command runs it on"
    if not isinstance(summary, dict) or "status" not in summary:
        return "damaged", "summary.json is not a summary (no status); the same command runs it on"
    if summary["status"] != "finished":
        return "unfinished", f"status {summary['status']}" + (f": {summary['error']}" if summary.get("error") else "")
    if "files" not in summary:
        return "unverified", "finished before summaries recorded their files"
    problems = damage(run_dir, summary)
    if problems:
        return "damaged", f"{'; '.join(problems.values())}; run it again with: {rerun_command(summary)}"
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
    sys.exit(main())
