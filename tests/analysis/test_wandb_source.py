"""download_project against real W&B runs: the offline runs `run.py logger=wandb` wrote (WANDB_MODE=offline),
read from their .wandb files into the public API's shape (tests/wandb_offline.py), give the same rows and
curves as the run directories themselves."""
import pytest

from analysis.collect import collect_curves, collect_runs
from analysis.errors import AnalysisError
from analysis.wandb_source import download_project
from tests.wandb_offline import OfflineApi


def test_runs_rebuilt_from_wandb_read_like_the_local_ones(tmp_path, wandb_offline_runs):
    runs = wandb_offline_runs / "runs"
    cache = download_project("team/salsa", tmp_path / "cache", api=OfflineApi(runs))
    local, remote = collect_runs([runs]), collect_runs([cache])
    assert len(local) == 2
    assert set(remote.columns) == set(local.columns)
    # config_hash and config.yaml (cell_config) are not mirrored; train_loss.f32 is (a run file), so the paper's metric is there too
    same = [c for c in local.columns if c not in ("run_dir", "config_hash", "cell_config")]
    assert not remote.filter(like="paper_train_loss").isna().any().any()
    assert remote[same].equals(local[same])
    for run_id in local["run_id"]:
        assert (cache / run_id / "train_loss.f32").read_bytes() == next(runs.glob(f"{run_id}/train_loss.f32")).read_bytes()
    local_curves, remote_curves = collect_curves(local), collect_curves(remote)
    for kind in ("step", "eval", "final"):
        assert (remote_curves["kind"] == kind).sum() == (local_curves["kind"] == kind).sum()
    columns = ["run_id", "kind", "step", "split", "loss", "acc", "step_size", "line_search"]
    assert remote_curves[columns].equals(local_curves[columns])


def test_an_empty_project_is_an_error(tmp_path):
    with pytest.raises(AnalysisError, match="has no runs"):
        download_project("team/salsa", tmp_path / "cache", api=OfflineApi(tmp_path))
