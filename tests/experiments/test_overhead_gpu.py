"""`python -m experiments.overhead.gpu --device cpu` (tiny shapes) writes a report whose rows and numbers are all
there and consistent with each other. The timings themselves mean nothing on a shared CPU."""
import json

import pytest

from experiments.overhead import gpu
from experiments.overhead.gpu import DEFAULT_WORKLOADS, main
from experiments.overhead.release import load_release

ROWS = ["torch_adam", "ours_salsa_adam", "ours_sls_sgd", "paper_salsa_adam", "paper_salsa_adam_speed_up", "release_salsa"]


def test_cpu_smoke_run_writes_a_consistent_report(tmp_path):
    out = tmp_path / "overhead_gpu.md"
    main(["--device", "cpu", "--steps", "12", "--out", str(out)])
    try:
        load_release(tmp_path)
        rows = ROWS + ["release_wheel"]
    except FileNotFoundError:
        rows = ROWS
    results, markdown = json.loads(out.with_suffix(".json").read_text()), out.read_text()
    assert results["command"] == f"python -m experiments.overhead.gpu --device cpu --steps 12 --out {out}"
    assert results["git"] and results["date"] and results["torch"] and "CPU" in results["machine"]
    assert list(results["workloads"]) == DEFAULT_WORKLOADS
    for name, w in results["workloads"].items():
        assert list(w["rows"]) == rows  # adam_fused only on CUDA
        assert w["steps"] == 12 and w["forward_s"] > 0 and w["forward_share"] > 0
        adam = w["rows"]["torch_adam"]
        assert adam["forwards_per_step"] == 1 and adam["floor_s"] == pytest.approx(adam["step_time_s"])
        for opt, r in w["rows"].items():
            assert r["forwards_per_step"] >= 1 and r["backwards_per_step"] == 1
            assert r["floor_s"] >= adam["step_time_s"] * (1 - 1e-12)
            assert r["floor_s"] == pytest.approx(adam["step_time_s"] * (1 + w["forward_share"] * (r["forwards_per_step"] - 1)))
            assert r["x_adam"] == pytest.approx(r["step_time_s"] / adam["step_time_s"])
            assert r["x_floor"] == pytest.approx(r["step_time_s"] / r["floor_s"])
            assert r["peak_bytes"] is None  # torch.cuda's memory statistics only
            assert f"| {name} | {opt} | {r['forwards_per_step']:.2f} | {r['step_time_s'] * 1e3:.2f} " in markdown
        assert f"| {name} | {w['description']} | 12 |" in markdown
    # the line searches ran: the reference classes search on each of their first 10 steps
    assert all(w["rows"]["paper_salsa_adam"]["forwards_per_step"] >= 2 for w in results["workloads"].values())


def test_a_failing_workload_is_reported_and_the_others_measured(tmp_path, monkeypatch):
    def measure(w, *args):
        if w.description.startswith("BERT"):
            raise RuntimeError("CUDA out of memory (simulated)")
        return real(w, *args)

    real = gpu.measure
    monkeypatch.setattr(gpu, "measure", measure)
    out = tmp_path / "overhead_gpu.md"
    main(["--device", "cpu", "--steps", "4", "--workloads", "bert/fp32", "resnet34/fp32", "--optimizers", "ours_salsa_adam",
          "--out", str(out)])
    results = json.loads(out.with_suffix(".json").read_text())
    assert results["failed"] == {"bert/fp32": "RuntimeError: CUDA out of memory (simulated)"}
    assert list(results["workloads"]) == ["resnet34/fp32"]
    assert list(results["workloads"]["resnet34/fp32"]["rows"]) == ["torch_adam", "ours_salsa_adam"]
    assert "- bert/fp32: RuntimeError: CUDA out of memory (simulated)" in out.read_text()
