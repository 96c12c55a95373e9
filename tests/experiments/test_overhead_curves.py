"""`python -m experiments.overhead.curves` on a short run: the curves, the figure and the README are written and agree."""
import json

import pytest

from experiments.overhead.curves import main


def test_short_run_writes_curves_figure_and_readme(tmp_path):
    main(["--steps", "40", "--window", "10", "--out", str(tmp_path)])
    results, readme = json.loads((tmp_path / "curves.json").read_text()), (tmp_path / "README.md").read_text()
    assert (tmp_path / "curves.png").stat().st_size > 0 and "](curves.png)" in readme
    assert results["command"] == f"python -m experiments.overhead.curves --steps 40 --window 10 --out {tmp_path}"
    assert list(results["optimizers"]) == ["torch_adam", "ours_salsa_adam", "ours_salsa_adam_paper_frequency", "paper_salsa_adam_speed_up"]
    for name, s in results["optimizers"].items():
        assert len(s["forwards"]) == len(s["step_time_s"]) == 4 and min(s["step_time_s"]) > 0
        half = s["second_half"]
        assert sum(s["forwards"]) / 4 == pytest.approx(s["forwards_per_step_all"])  # the windows tile the run
        assert sum(s["forwards"][2:]) / 2 == pytest.approx(half["forwards_per_step"])
        assert min(s["forwards"]) >= 1 and sum(s["step_time_s"][2:]) / 2 == pytest.approx(half["step_time_s"])
        assert f"| {name} | {s['forwards_per_step_all']:.3f} | {half['forwards_per_step']:.3f} |" in readme
    assert results["optimizers"]["torch_adam"]["forwards"] == [1.0] * 4
    assert results["optimizers"]["paper_salsa_adam_speed_up"]["forwards"][0] >= 2  # it searches on each of its first 10 steps
