"""`python -m tools.fault_cases [--only NAME ...]` (make fault-cases): the fault cases of tools/fault_cases.yaml, each
in its own temporary directory, as an attacker or a careless user would meet them, and their outcomes in
results/fault_cases.md.

A case is shell: `setup` makes the earlier results (finished runs, a victim file outside the run directory), then
`command` is the faulty command and `check` (optional) tests what must hold afterwards (exit 0: it holds). The case
ends clean when its exit status is what `expect` says (fail: non-zero; ok: 0; a number: that status; any), nothing
printed a traceback, stderr holds at most `lines` lines (default 1), the files under `keep` (default: the run
directories and the victim) are byte-identical to what the setup left, and the check holds. Every case runs with
the shell variables of PRELUDE below.
"""
from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
CASES = Path(__file__).with_suffix(".yaml")
OUT = REPO / "results" / "fault_cases.md"
TRACEBACK = "Traceback (most recent call last)"
TIMINGS = ("step_time_s", "samples_per_s")  # what differs between two runs of one config
PRELUDE = """set -u
export WANDB_MODE=disabled HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_OFFLINE=1 OMP_NUM_THREADS=1
export TOKENIZERS_PARALLELISM=false TMPDIR="$W/tmp"
ROOT="$W/root"; RUNS="$ROOT/runs"; RUN="$PY $REPO/run.py"
fail() { echo "$*" >&2; exit 1; }
# finished [OVERRIDES]: a finished run of the default config (digits, our SaLSa, 1 epoch) under $ROOT, copied (cp -a)
# from the one run of those overrides that all cases share ($CACHE, made by the first case that asks for it)
finished() {
  local entry="$CACHE/$(printf '%s\n' "$@" | sha256sum | cut -c1-16)"
  ( flock 9; test -d "$entry/runs" || $RUN paths.root="$entry" trainer.epochs=1 "$@" > /dev/null 2>&1 || { rm -rf "$entry"; exit 1; }
  ) 9> "$entry.lock" || fail "setup: run.py $* failed"
  mkdir -p "$RUNS" && cp -a "$entry/runs/." "$RUNS/"
}
rundir() { ls -d "$RUNS"/*/ | head -1 | sed 's:/$::'; }
# runid [OVERRIDES] the run id (its directory's name) of the config `finished OVERRIDES` runs
runid() { $PY -c 'import sys; from hydra import compose, initialize_config_dir; from salsa.contract.runid import identify
initialize_config_dir(config_dir=sys.argv[1], version_base="1.3"); print(identify(compose("config", overrides=sys.argv[2:])).id)' \
  "$REPO/conf" trainer.epochs=1 "$@"; }
FAULTY="$PY $REPO/tests/faulty_run.py"  # run.py with SALSA_TEST_KILL_AT (a signal at a phase or inside a write)
ARGS="trainer.epochs=3 trainer.checkpoint_every=10 trainer.log_every=5 model.dropout=0.2 trainer.device=cpu"
# resumes_identically ARGS: the same command resumes the run under $ROOT, and it then equals an uninterrupted run's
# (metrics.jsonl less its timings, train_loss.f32, the summary's metrics)
resumes_identically() {
  $RUN paths.root="$ROOT" "$@" > /dev/null 2>&1 || fail "the same command did not resume the run"
  $RUN paths.root="$W/clean" "$@" > /dev/null 2>&1 || fail "the uninterrupted run failed"
  $PY -c 'import sys; from tools.fault_cases import same_run; sys.exit(not same_run(*sys.argv[1:]))' \
    "$RUNS" "$W/clean/runs" || fail "the resumed run differs from an uninterrupted one"
}
# jset FILE 'PYTHON' edits the JSON file FILE as d
jset() { $PY -c 'import json, sys; p = sys.argv[1]; d = json.load(open(p)); exec(sys.argv[2]); json.dump(d, open(p, "w"))' "$@"; }
"""


@dataclass
class Case:
    name: str
    group: str
    expected: str
    command: str
    setup: str = ""
    check: str = ""
    expect: str | int = "fail"
    lines: int = 1
    keep: list[str] = field(default_factory=lambda: ["root/runs/**/*", "victim*"])
    timeout: int = 180


@dataclass
class Outcome:
    status: int | None          # None: it ran past its timeout
    line: str
    lines: int
    traceback: bool
    identical: bool
    kept: int                   # how many earlier files were compared
    check: str                  # "" when the check holds, else what it printed
    seconds: float

    def clean(self, case: Case) -> bool:
        status = {"fail": self.status not in (0, None), "ok": self.status == 0, "any": self.status is not None}
        good = status.get(case.expect, self.status == case.expect) if isinstance(case.expect, str) else self.status == case.expect
        return good and not self.traceback and self.lines <= case.lines and self.identical and not self.check


def shell(script: str, work: Path, timeout: int, cache: Path) -> subprocess.CompletedProcess | None:
    """The script under bash in its own process group, all of which is killed past `timeout` (None then)."""
    env = {**os.environ, "W": str(work), "REPO": str(REPO), "PY": sys.executable, "CACHE": str(cache)}
    env.pop("PYTHONPATH", None)
    process = subprocess.Popen(["bash", "-c", PRELUDE + script], cwd=REPO, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, start_new_session=True)
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        return None
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def same_run(runs: str, other: str) -> bool:
    """The one run under each runs folder recorded the same: metrics.jsonl less its timings, train_loss.f32 and the
    summary's metrics."""
    a, b = (next(Path(p).iterdir()) for p in (runs, other))

    def records(d: Path) -> list[dict]:
        return [{k: v for k, v in json.loads(r).items() if k not in TIMINGS} for r in (d / "metrics.jsonl").read_text().splitlines()]

    def metrics(d: Path) -> dict:
        return json.loads((d / "summary.json").read_text())["metrics"]
    return records(a) == records(b) and (a / "train_loss.f32").read_bytes() == (b / "train_loss.f32").read_bytes() \
        and metrics(a) == metrics(b)


def unchanged(work: Path, patterns: list[str], before: dict[str, str]) -> bool:
    """Every file the setup left under `patterns` is still there, byte for byte (new files may appear)."""
    after = digests(work, patterns)
    return all(after.get(name) == digest for name, digest in before.items())


def digests(work: Path, patterns: list[str]) -> dict[str, str]:
    found = {}
    for pattern in patterns:
        for path in work.glob(pattern):
            if path.is_symlink() or not path.is_file():
                found[str(path.relative_to(work))] = f"link -> {os.readlink(path)}" if path.is_symlink() else "not a file"
            else:
                found[str(path.relative_to(work))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


def shown_line(stderr: str, stdout: str) -> str:
    """The line a user reads: the last error line on stderr, else its last line, else stdout's last."""
    for text in (stderr, stdout):
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        errors = [line for line in lines if line.startswith("error")]
        if errors or lines:
            return (errors or lines)[-1]
    return ""


def run_case(case: Case, cache: Path) -> Outcome:
    with tempfile.TemporaryDirectory(prefix=f"fault-{case.name}-", ignore_cleanup_errors=True) as tmp:
        work = Path(tmp)
        (work / "tmp").mkdir()
        setup = shell(case.setup, work, 600, cache) if case.setup else None
        if setup is not None and setup.returncode:
            return Outcome(None, f"setup failed: {setup.stderr.decode(errors='replace').strip()[-300:]}", 0, False, False, 0,
                           "setup failed", 0.0)
        before = digests(work, case.keep)
        started = time.perf_counter()
        done = shell(case.command, work, case.timeout, cache)
        seconds = time.perf_counter() - started
        if done is None:
            return Outcome(None, f"still running after {case.timeout} s (killed)", 0, False,
                           unchanged(work, case.keep, before), len(before), "", seconds)
        stdout, stderr = done.stdout.decode(errors="backslashreplace"), done.stderr.decode(errors="backslashreplace")
        identical = unchanged(work, case.keep, before)
        checked = shell(case.check, work, 300, cache) if case.check else None
        problem = "" if checked is None or checked.returncode == 0 else \
            (checked.stdout + checked.stderr).decode(errors="replace").strip()[-300:] or f"check exited {checked.returncode}"
        return Outcome(done.returncode, shown_line(stderr, stdout), len([x for x in stderr.splitlines() if x.strip()]),
                       TRACEBACK in stdout or TRACEBACK in stderr, identical, len(before), problem, seconds)


def cell(text: str, limit: int = 220) -> str:
    text = " ".join(str(text).split())
    text = text if len(text) <= limit else text[: limit - 3] + "..."
    return text.replace("|", "\\|")


def code(text: str) -> str:
    """Shell as one line of code (its lines joined by '; ')."""
    text = "; ".join(line.strip() for line in text.splitlines() if line.strip())
    return f"`{cell(text, 400).replace('`', chr(39))}`" if text else ""


def kept(o: Outcome) -> str:
    return ("yes" if o.identical else "**no**") + f" ({o.kept} file{'s' * (o.kept > 1)})" if o.kept else "- (none kept)"


def table(results: list[tuple[Case, Outcome]], command: str) -> str:
    clean = [case.name for case, o in results if o.clean(case)]
    unclean = [case.name for case, o in results if not o.clean(case)]
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True).stdout.strip()
    when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = ["# Fault cases", "", f"Made by `{command}` ({when}, git {commit or 'unknown'}); the cases: tools/fault_cases.yaml.  ",
             "Each case runs in its own temporary directory: `setup` makes the earlier results, `command` is the fault, "
             "`check` what must hold after it. Clean: the exit status expected, no traceback, at most the lines "
             "expected on stderr, the earlier results byte-identical, the check holds.  ",
             f"**{len(clean)} of {len(results)} clean.** Not clean: {', '.join(unclean) or 'none'}.", "",
             "| case | group | setup | command | expected | exit | line printed (stderr lines) | traceback "
             "| earlier results identical | check | clean |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for case, o in results:
        exit_status = "timeout" if o.status is None else f"{o.status} ({signal.Signals(-o.status).name})" if o.status < 0 else str(o.status)
        lines.append("| " + " | ".join([case.name, case.group, code(case.setup), code(case.command), cell(case.expected), exit_status,
                                        cell(o.line) + f" ({o.lines})", "**yes**" if o.traceback else "no", kept(o),
                                        cell(o.check or ("holds" if case.check else "-"), 160),
                                        "yes" if o.clean(case) else "**no**"]) + " |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m tools.fault_cases", description=__doc__.split("\n\n")[0])
    p.add_argument("--only", nargs="+", metavar="NAME", help="only these cases (names in tools/fault_cases.yaml)")
    p.add_argument("--out", type=Path, default=OUT, help=f"the table (default {OUT.relative_to(REPO)})")
    p.add_argument("--jobs", type=int, default=1, help="cases run at once (default 1)")
    a = p.parse_args(argv)
    cases = [Case(**entry) for entry in yaml.safe_load(CASES.read_text(encoding="utf-8"))]
    unknown = sorted(set(a.only or []) - {c.name for c in cases})
    if unknown:
        print(f"error: no case named {', '.join(unknown)} in {CASES.relative_to(REPO)}", file=sys.stderr)
        return 2
    chosen = [case for case in cases if not a.only or case.name in a.only]

    def one(case: Case) -> tuple[Case, Outcome]:
        outcome = run_case(case, Path(cache))
        print(f"{'clean' if outcome.clean(case) else 'NOT CLEAN':<9} {case.name:<36} exit {outcome.status}, "
              f"{outcome.seconds:.0f} s: {cell(outcome.line, 150)}", flush=True)
        return case, outcome
    with tempfile.TemporaryDirectory(prefix="fault-cases-runs-") as cache, ThreadPoolExecutor(max(1, a.jobs)) as pool:
        results = list(pool.map(one, chosen))  # the table keeps the cases' order
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(table(results, "python -m tools.fault_cases " + " ".join(argv if argv is not None else sys.argv[1:])),
                     encoding="utf-8")
    print(f"{sum(o.clean(c) for c, o in results)} of {len(results)} clean: {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
