"""make gpu-checks: everything that needs a GPU, in priority order, each part under its own timeout, into one folder
of at most 8 files (each well under 16 MiB), with one summary line per part:

    python -m tools.gpu_checks --out outputs/gpu-checks                        # CUDA: at most 9 minutes on one GPU
    python -m tools.gpu_checks --out outputs/gpu-checks --device cpu --smoke   # the same parts on the CPU, small

1. tests      pytest tests/gpu (every paper preset in fp32 and bf16, then compiled, one preset per family; the
              reference classes against the authors' wheel; kill and resume; torchrun with NCCL) -> tests.xml
2. bench      experiments.overhead.gpu (ours, Adam, fused Adam and the paper's classes against their floors, on
              learnable data and on a plateau) -> overhead_gpu.md and .json
3. calibrate  experiments.reproduce.calibrate --tier gpu, one task at a time, on files synthesised in the tasks' real
              on-disk formats (tests/realformat.py) -> <machine>.json and .md
Everything the parts print goes to gpu_checks.log, the summary lines to summary.txt. A part still running at its
timeout gets SIGINT (pytest then writes its report; the benchmark has written every finished workload, calibrate every
finished task), and SIGKILL 20 s later. Exit status 1 if any part failed or ran out of time.

The timeouts add up to 7.5 minutes (CUDA), so that an offline install (about a minute) and the checks fit one
9-minute call on a fresh GPU machine. Calibrate measures the tier's precision (fp32) only. The GLUE tasks run on
synthetic sentences of about SST-2's and MRPC's lengths, with BERT-base initialised at random and a WordPiece
vocabulary trained on them (no hub here): a smaller embedding table than bert-base-uncased's.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from tests.realformat import write_cifar, write_glue  # noqa: E402

ENV = {"WANDB_MODE": "disabled", "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
       "TOKENIZERS_PARALLELISM": "false", "PYTHONUNBUFFERED": "1"}
TIMEOUT_S = {"tests": 230, "bench": 100, "calibrate": 120}
SMOKE_TIMEOUT_S = {"tests": 80, "bench": 40, "calibrate": 60}  # 3 minutes
GRACE_S = 20
TASKS = ("cifar10", "cifar100", "sst2", "mrpc")  # the one-GPU tier's, in its order
GLUE = ("model.pretrained=null", "model.tokenizer.kind=wordpiece", "+model.tokenizer.vocab_size=30522")
# smoke: the in-process cases of each test file (the MLP preset, one reference setting, the trials) and gloo on one
# rank; the cases that start several runs (kill and resume, torchrun against a plain run) only on the GPU
SMOKE_TESTS = ("-k", "not compile and not bf16 and (mnist1d or not preset) and (SaLSa-defaults or not reference) and not two_ranks "
                     "and not resume and not plain")


def tests(a, out: Path) -> list[str]:
    return [sys.executable, "-m", "pytest", "-q", "-p", "no:randomly", "tests/gpu", "--device", a.device,
            f"--junitxml={out / 'tests.xml'}", *(SMOKE_TESTS if a.smoke else ())]


def bench(a, out: Path) -> list[str]:
    size = ["--steps", "3", "--workloads", "resnet34/fp32", "gpt2-plateau/bf16",
            "--optimizers", "ours_salsa_adam", "release_salsa"] if a.smoke \
        else ["--seconds", "9"]
    return [sys.executable, "-m", "experiments.overhead.gpu", "--device", a.device, "--out", str(out / "overhead_gpu.md"), *size]


def calibrate(a, out: Path, data: Path, task: str) -> list[str]:
    size = ["--optimizers", "torch_adam", "ours_salsa_adam", "--steps", "1", "--warmup", "0", "trainer.batch_size=4"] if a.smoke \
        else ["--steps", "15", "--warmup", "3"]
    return [sys.executable, "-m", "experiments.reproduce.calibrate", "--tier", "gpu", "--tasks", task, "--precisions", "fp32",
            "--out", str(out), *size, f"paths.data={data}", f"trainer.device={a.device}", "download=false",
            *(GLUE if task in ("sst2", "mrpc") else ())]


def synthesise(root: Path) -> Path:
    """CIFAR-10/100 and GLUE files in their real formats, enough for calibrate's batches (128 and 32) x 18 steps."""
    rng = np.random.default_rng(0)
    write_cifar(root, rng, train10=2400, train100=2400)
    write_glue(root, rng, train=640, words=(8, 30))
    return root


def run(cmd: list[str], log, timeout_s: float) -> tuple[int | None, float]:
    """The command's exit status (None: stopped at its timeout) and its wall time."""
    log.write(f"\n$ {' '.join(cmd)}\n")
    log.flush()
    started = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **ENV})
    try:
        status = proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=GRACE_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        status = None
    return status, time.monotonic() - started


def tests_line(out: Path) -> str:
    report = out / "tests.xml"
    if not report.exists():
        return "no report"
    suite = ET.parse(report).getroot()
    suite = suite if suite.tag == "testsuite" else suite[0]
    n = {k: int(suite.get(k, 0)) for k in ("tests", "failures", "errors", "skipped")}
    passed = n["tests"] - n["failures"] - n["errors"] - n["skipped"]
    return f"{passed} passed, {n['failures']} failed, {n['errors']} errors, {n['skipped']} skipped"


def bench_line(out: Path) -> str:
    path = out / "overhead_gpu.json"
    if not path.exists():
        return "no table"
    results = json.loads(path.read_text())
    return f"{len(results['workloads'])} workloads measured, {len(results['failed'])} failed"


def calibrate_line(out: Path) -> str:
    found = [json.loads(p.read_text()) for p in out.glob("*.json") if p.name != "overhead_gpu.json"]
    if not found:
        return "no cost file"
    doc = found[0]
    tasks = sorted({e["task"] for e in doc["entries"]})
    return f"{len(doc['entries'])} measured ({', '.join(tasks) or 'no task'}), {len(doc['not_measured'])} not measured"


def line(name: str, detail: str, status: int | None, seconds: float, timeout_s: float) -> str:
    verdict = "ok" if status == 0 else f"stopped at its {timeout_s:.0f} s timeout" if status is None else f"FAILED (exit {status})"
    return f"{name}: {verdict}: {detail} in {seconds:.0f} s"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=REPO / "outputs" / "gpu-checks")
    p.add_argument("--device", choices=("cuda", "cpu"), default="cuda")
    p.add_argument("--smoke", action="store_true", help="small sizes and few steps: the script end to end in minutes")
    a = p.parse_args(argv)
    out = a.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    for old in out.iterdir():
        old.unlink()
    budget = SMOKE_TIMEOUT_S if a.smoke else TIMEOUT_S
    started, summary = time.monotonic(), []
    with open(out / "gpu_checks.log", "w") as log, tempfile.TemporaryDirectory(prefix="gpu-checks-") as tmp:
        status, seconds = run(tests(a, out), log, budget["tests"])
        summary.append(line("tests", tests_line(out), status, seconds, budget["tests"]))
        status, seconds = run(bench(a, out), log, budget["bench"])
        summary.append(line("bench", bench_line(out), status, seconds, budget["bench"]))
        t0, data, statuses = time.monotonic(), synthesise(Path(tmp)), []
        for task in TASKS[:1] if a.smoke else TASKS:
            left = budget["calibrate"] - (time.monotonic() - t0)
            if left < 5:
                statuses.append(None)
                break
            statuses.append(run(calibrate(a, out, data, task), log, left)[0])
        status = None if None in statuses else max(statuses)
        summary.append(line("calibrate", calibrate_line(out), status, time.monotonic() - t0, budget["calibrate"]))
    files = sorted(out.iterdir())
    summary.append(f"gpu-checks: {len(files) + 1} files in {out}, largest {max(f.stat().st_size for f in files) / 2**20:.1f} MiB, "
                   f"{time.monotonic() - started:.0f} s in all ({a.device}{', smoke' if a.smoke else ''})")
    (out / "summary.txt").write_text("\n".join(summary) + "\n")
    print("\n".join(summary))
    return 0 if all(": ok:" in s for s in summary[:3]) else 1


if __name__ == "__main__":
    sys.exit(main())
