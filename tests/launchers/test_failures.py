"""The failure callback records a failed job's run id as run.py computes it (salsa.contract.runid), without
loading torch: a sweep's bookkeeping stays light."""
import json
import subprocess
import sys

from hydra import compose, initialize_config_dir

from salsa.contract.runid import identify
from tests.conftest import REPO

CONF = REPO / "conf"
OVERRIDES = ["optimizer=torch_sgd", "seed=3", "trainer.epochs=2"]


def test_a_failure_is_recorded_with_the_run_id_and_without_torch(tmp_path):
    code = ("import sys; from pathlib import Path; from hydra import compose, initialize_config_dir; "
            "from hydra_plugins.salsa_launchers.failures import record_failure; "
            f"initialize_config_dir(config_dir={str(CONF)!r}, version_base='1.3'); "
            f"cfg = compose('config', overrides={OVERRIDES!r}); "
            f"record_failure(Path({str(tmp_path)!r}), cfg, {OVERRIDES!r}, 'boom'); "
            "loaded = sorted(m for m in sys.modules if m == 'torch' or m.startswith(('torch.', 'salsa.train'))); "
            "print(loaded); sys.exit(1 if loaded else 0)")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        expected = identify(compose("config", overrides=OVERRIDES)).id
    record = json.loads((tmp_path / "failure.json").read_text(encoding="utf-8"))
    assert record == {"run_id": expected, "overrides": OVERRIDES, "error": "boom"}
