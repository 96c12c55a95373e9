"""make gpu-checks DEVICE=cpu SMOKE=1: the GPU checks' own script, end to end on the CPU with small sizes (each part
really runs: tests/gpu with --device cpu, the benchmark, calibrate on synthesised files), writes one folder of at most
8 files under 16 MiB with one summary line per part."""
import json
import subprocess
import sys
import time
import xml.etree.ElementTree as ET

from tests.realformat import REPO


def test_the_smoke_run_writes_one_small_folder_with_a_line_per_part(tmp_path):
    out = tmp_path / "gpu-checks"
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "tools.gpu_checks", "--device", "cpu", "--smoke", "--out", str(out)], cwd=REPO,
                          capture_output=True, text=True, timeout=400)
    seconds = time.monotonic() - started
    assert done.returncode == 0, done.stdout + done.stderr
    files = sorted(p.name for p in out.iterdir())
    assert len(files) <= 8 and all((out / f).stat().st_size < 16 * 2**20 for f in files)
    [machine] = [f for f in files if f.endswith(".json") and f != "overhead_gpu.json"]
    assert set(files) == {"gpu_checks.log", "summary.txt", "tests.xml", "overhead_gpu.md", "overhead_gpu.json", machine,
                          machine.replace(".json", ".md")}
    lines = (out / "summary.txt").read_text().splitlines()
    assert [line.split(":")[0] for line in lines] == ["tests", "bench", "calibrate", "gpu-checks"]
    assert all(": ok: " in line for line in lines[:3]) and lines == done.stdout.splitlines()
    suite = ET.parse(out / "tests.xml").getroot()[0]
    assert int(suite.get("tests")) >= 10 and suite.get("failures") == suite.get("errors") == suite.get("skipped") == "0"
    assert "--device cpu" in (out / "gpu_checks.log").read_text()
    bench = json.loads((out / "overhead_gpu.json").read_text())
    assert list(bench["workloads"]) == ["resnet34/fp32", "gpt2-plateau/bf16"] and not bench["failed"]
    costs = json.loads((out / machine).read_text())
    assert {e["key"]["optimizer"] for e in costs["entries"]} == {"torch_adam", "ours_salsa_adam"} and not costs["not_measured"]
    assert f"{len(files)} files in {out}" in lines[3] and seconds < 190  # the smoke run's timeouts add up to 180 s
