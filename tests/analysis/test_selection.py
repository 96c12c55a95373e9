"""The tuned-lr rule (analysis.selection.choose_lr), which the sweep calls too, and the analysis's use of it."""
import math

from analysis.collect import collect_runs
from analysis.selection import Choice, GridRun, choose_lr, select_cells, tuning_seed

from .runtree import write_run


def finished(lr, value):
    return GridRun(lr, "finished", value)


def test_the_lowest_value_wins_whatever_the_order_of_the_runs():
    grid = [finished(0.1, 0.5), finished(0.01, 0.3), finished(1.0, 0.9), GridRun(10.0, "diverged", None)]
    assert choose_lr(grid) == choose_lr(grid[::-1]) == Choice(0.01)


def test_a_tie_goes_to_the_smaller_lr():
    assert choose_lr([finished(0.3, 0.2), finished(0.03, 0.2), finished(3.0, 0.2)]) == Choice(0.03)
    assert choose_lr([finished(1e-3, 0.4), finished(1e-2, 0.1), finished(1e-1, 0.1)]) == Choice(1e-2)


def test_no_choice_while_a_grid_run_is_not_done_even_when_the_done_ones_agree():
    grid = [finished(0.01, 0.1), GridRun(0.1, "running", None), GridRun(1.0, "missing", None), finished(0.3, 0.5)]
    assert choose_lr(grid) == Choice(None, "grid incomplete: lr 0.1 running, lr 1 missing")


def test_nan_infinite_and_missing_values_never_win():
    grid = [finished(0.01, math.nan), finished(0.1, None), finished(1.0, math.inf), finished(3.0, 2.5)]
    assert choose_lr(grid) == Choice(3.0)


def test_no_choice_when_every_run_diverged_or_lacks_the_metric_or_there_is_no_run():
    why = "every grid run diverged or lacks val_loss_final"
    assert choose_lr([GridRun(0.1, "diverged", None), GridRun(1.0, "diverged", None)]) == Choice(None, why)
    assert choose_lr([GridRun(0.1, "diverged", None), finished(0.01, math.nan)]) == Choice(None, why)
    assert choose_lr([]) == Choice(None, "no grid runs")


def test_the_grid_seed_is_the_seed_with_the_most_lrs():
    assert tuning_seed([(3, 0.1), (3, 0.2), (3, 0.3), (0, 0.2), (1, 0.2)]) == 3
    assert tuning_seed([(2, 0.1), (1, 0.1)]) == 1       # one lr: every seed ties, the lowest is named
    assert tuning_seed([]) is None


def grid_tree(root, statuses):
    """Adam's grid on seed 0 (lr -> val_loss_final, in statuses' order), and the 1e-2 winner on seeds 1 and 2."""
    for lr, (status, val) in statuses.items():
        write_run(root, "digits-mlp", "torch_adam", "tuned", lr, 0, 0.3, val_loss=val, status=status)
    for seed in (1, 2):
        write_run(root, "digits-mlp", "torch_adam", "tuned", 1e-2, seed, 0.3, val_loss=0.1)
    return collect_runs([root])


def test_the_analysis_holds_the_cell_back_while_a_grid_run_is_unfinished(tmp_path):
    runs = grid_tree(tmp_path, {1e-3: ("finished", 0.2), 1e-2: ("finished", 0.1), 1e-1: ("interrupted", 0.05)})
    cells, record = select_cells(runs)
    assert math.isnan(record.iloc[0]["winner_lr"]) and record.iloc[0]["grid_seed"] == 0
    assert (cells["lr_choice"] == "tuned").sum() == 0
    # given only the runs it accepts, the unfinished run is out of sight and 1e-2 would be chosen: it needs them all
    _, record = select_cells(runs[runs["refused"] == ""])
    assert record.iloc[0]["winner_lr"] == 1e-2


def test_the_analysis_breaks_a_tie_towards_the_smaller_lr_and_skips_diverged_runs(tmp_path):
    runs = grid_tree(tmp_path / "tie", {1e-1: ("finished", 0.1), 1e-2: ("finished", 0.1), 1.0: ("failed", None)})
    cells, record = select_cells(runs)
    assert record.iloc[0]["winner_lr"] == 1e-2 and record.iloc[0]["lr_grid"] == "0.01 0.1"
    assert sorted(cells.loc[cells["lr_choice"] == "tuned", "seed"]) == [0, 1, 2]
