"""Runs the sweeps produce that the hand-built tree has not: AdamW baselines and runs without step records."""
from analysis.cli import main

from .conftest import PAPER_CSV, read_csv
from .runtree import write_run


def test_adamw_is_the_adam_column_and_runs_without_step_records_still_plot(tmp_path):
    root = tmp_path / "runs"
    for seed in range(2):
        write_run(root, "openwebtext-gpt2", "torch_adamw", "paper", 6e-4, seed, 3.0 + seed)
        run = write_run(root, "openwebtext-gpt2", "paper_salsa_adam", "none", None, seed, 2.5)
        (run / "metrics.jsonl").write_text("")  # fewer steps than trainer.log_every: no records to draw
    out = tmp_path / "results"
    assert main(["--root", str(root), "--out", str(out), "--planned-seeds", "2", "--paper-csv", str(PAPER_CSV)]) == 0
    table = read_csv(out / "tables" / "final_train_loss.csv").set_index(["task", "column"])
    assert table.loc[("openwebtext-gpt2", "ADAM(paper)"), "mean"] == 3.5
    assert not any("torch_adamw" in column for _, column in table.index)
    assert all(p.stat().st_size > 0 for p in (out / "figures").glob("*.png"))
