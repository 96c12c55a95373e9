import json

from analysis.collect import collect_curves, collect_runs
from analysis.names import PAPER_COLUMNS, column_name, ordered_columns
from analysis.selection import select_cells

from .runtree import write_run


def test_optimizer_names_map_to_the_paper_columns():
    assert [column_name(o, b) for o, b in [("torch_adam", "paper"), ("torch_adam", "tuned"), ("torch_sgd", "paper"),
                                           ("paper_sls_adam", "none"), ("paper_sls_sgd", "none"),
                                           ("paper_salsa_adam", "none"), ("salsa", "none"),
                                           ("paper_salsa_sgd", "none")]] == [
        "ADAM(paper)", "ADAM(tuned)", "SGD(paper)", "ADAM_SLS", "SGD_SLS", "ADAM_SaLSa", "ADAM_SaLSa", "SGD_SaLSa"]


def test_the_release_and_our_optimizers_are_extra_columns_never_the_papers():
    extras = [column_name(o, "none") for o in ("release_salsa", "ours_salsa_adam", "ours_salsa_sgd", "ours_sls_adam", "ours_sls_sgd")]
    assert extras == ["SaLSA(release)", "ADAM_SaLSa(ours)", "SGD_SaLSa(ours)", "ADAM_SLS(ours)", "SGD_SLS(ours)"]
    assert not set(extras) & set(PAPER_COLUMNS)
    assert ordered_columns(["ADAM_SaLSa(ours)", "SGD_SaLSa", "SaLSA(release)", "ADAM(paper)"]) == [
        "ADAM(paper)", "SGD_SaLSa", "SaLSA(release)", "ADAM_SaLSa(ours)"]


def test_one_row_per_run_with_identity_metrics_and_compute(tmp_path):
    write_run(tmp_path, "digits-mlp", "paper_salsa_sgd", "none", None, 3, 0.25)
    runs = collect_runs([tmp_path])
    row = runs.iloc[0]
    assert (row["task"], row["column"], row["seed"], row["status"]) == ("digits-mlp", "SGD_SaLSa", 3, "finished")
    assert (row["final_train_loss"], row["wall_time_s"], row["line_searches"]) == (0.25, 12.0, 20)
    assert len(row["config_hash"]) == 64


def test_the_same_run_in_two_roots_counts_once_and_a_finished_copy_wins(tmp_path):
    write_run(tmp_path / "a", "digits-mlp", "paper_salsa_adam", "none", None, 0, 0.1, status="running")
    copy = write_run(tmp_path / "b", "digits-mlp", "paper_salsa_adam", "none", None, 0, 0.1)
    runs = collect_runs([tmp_path / "a", tmp_path / "b"])
    assert len(runs) == 1 and runs.iloc[0]["status"] == "finished" and runs.iloc[0]["run_dir"] == str(copy)


def test_a_run_without_summary_is_listed_as_unfinished(tmp_path):
    run_dir = write_run(tmp_path, "digits-mlp", "paper_salsa_adam", "none", None, 0, 0.1)
    (run_dir / "summary.json").unlink()
    assert collect_runs([tmp_path]).iloc[0]["status"] == "no summary.json"


def test_curves_are_tagged_with_their_cell(tmp_path):
    write_run(tmp_path, "digits-mlp", "paper_sls_adam", "none", None, 1, 0.1)
    curves = collect_curves(collect_runs([tmp_path]))
    assert set(curves["kind"]) == {"step", "eval", "final"}
    assert set(curves["column"]) == {"ADAM_SLS"} and set(curves["seed"]) == {1}


def test_tuned_cell_takes_the_validation_winner_on_every_seed(tmp_path):
    for lr, val in ((1e-3, 0.2), (1e-2, 0.1)):
        write_run(tmp_path, "digits-mlp", "torch_sgd", "tuned", lr, 0, 0.3, val_loss=val, test_loss=1 - val)
    write_run(tmp_path, "digits-mlp", "torch_sgd", "tuned", 1e-2, 1, 0.4)
    runs = collect_runs([tmp_path])
    cells, record = select_cells(runs)
    assert record.iloc[0]["winner_lr"] == 1e-2 and record.iloc[0]["grid_runs"] == 2
    assert sorted(cells["seed"]) == [0, 1] and set(cells["lr"]) == {1e-2}
    assert json.loads((tmp_path / runs.iloc[0]["run_id"] / "summary.json").read_text())["lr_choice"] == "tuned"
