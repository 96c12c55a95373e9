"""The net under every entry point (salsa/unforeseen.py): an error nobody foresaw, planted in a subprocess by
tests/planted/sitecustomize.py, ends in one line on stderr that names the traceback file, no traceback on stderr, the
traceback in that file and exit 70; a multirun's failed runs each print their line and the sweep ends with one more.
`make tables` with an output that cannot be written is refused in one line before anything is read."""
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO

from tests.wandb_offline import subprocess_env

PLANTED = REPO / "tests" / "planted"
EXIT = 70
NAMED = re.compile(r"traceback in (\S+\.txt)\)")


def run(args: list[str], plant: str, tmp_path: Path, cwd=REPO, timeout=300) -> subprocess.CompletedProcess:
    env = subprocess_env(PYTHONPATH=str(PLANTED), SALSA_PLANT_FAULT=plant, TMPDIR=str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir(exist_ok=True)
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def our_lines(stderr: str) -> list[str]:
    """stderr less make's own report of a failed recipe and Hydra's naming of the failed job."""
    return [line for line in stderr.splitlines() if line.strip() and not line.startswith(("make: ", "make[", "Error executing job"))]


def traceback_file(line: str, folder: Path) -> Path:
    """The file the line names: in `folder`, holding the planted error's traceback."""
    match = NAMED.search(line)
    assert match, line
    path = Path(match.group(1))
    assert path.parent == folder.resolve() and path.is_file(), (path, folder)
    text = path.read_text(encoding="utf-8")
    assert "Traceback (most recent call last)" in text and "ZeroDivisionError: planted in" in text, text
    return path


def assert_one_line(out: subprocess.CompletedProcess, folder: Path, entry: str, status: int = EXIT) -> Path:
    assert out.returncode == status, (out.returncode, out.stderr)
    assert "Traceback" not in out.stderr, out.stderr
    [line] = our_lines(out.stderr)
    assert line.startswith(f"error: {entry} failed unexpectedly: ZeroDivisionError: planted in"), line
    return traceback_file(line, folder)


def test_run_py_single_run_writes_the_traceback_under_paths_root(tmp_path):
    out = run([sys.executable, "run.py", f"paths.root={tmp_path}"], "salsa.train.schema:validate", tmp_path)
    assert_one_line(out, tmp_path / "errors", "run.py")
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("launcher", ["basic", "local"])
def test_run_py_multirun_prints_a_line_per_failed_run_and_one_for_the_sweep(tmp_path, launcher):
    """basic: the runs in this process; local: in joblib's worker processes, whose tracebacks never come back."""
    chosen = [] if launcher == "basic" else ["hydra/launcher=local", "hydra.launcher.n_jobs=1"]
    out = run([sys.executable, "run.py", "--multirun", *chosen, "seed=0,1", f"paths.root={tmp_path}"],
              "salsa.train.schema:validate", tmp_path)
    assert out.returncode == 1, out.stderr
    assert "Traceback" not in out.stderr, out.stderr
    *runs, closing = our_lines(out.stderr)
    assert len(runs) == 2 and all(line.startswith("error: run.py failed unexpectedly: ZeroDivisionError") for line in runs), runs
    assert len({traceback_file(line, tmp_path / "errors") for line in runs}) == 2
    assert closing.startswith("error: runs of the sweep failed"), closing
    if launcher == "local":  # its callback records each failure (conf/hydra/launcher/local.yaml)
        assert "2 failure.json" in closing, closing


def test_run_py_outside_a_run_writes_the_traceback_under_the_given_root(tmp_path):
    """An error of the sweep itself (not of a run): Hydra raises it to run.py, which has only the command line."""
    out = run([sys.executable, "run.py", "--multirun", "seed=0,1", f"paths.root={tmp_path}"],
              "hydra._internal.hydra:Hydra.multirun", tmp_path)
    assert_one_line(out, tmp_path / "errors", "run.py")


@pytest.mark.parametrize("module", ["analysis", "salsa.contract.verify", "experiments.reproduce",
                                    "experiments.reproduce.calibrate"])
def test_python_m_entry_points_write_the_traceback_to_the_temporary_directory(tmp_path, module):
    args = {"analysis": ["--root", str(tmp_path), "--out", str(tmp_path / "out")], "salsa.contract.verify": [str(tmp_path)],
            "experiments.reproduce": ["--tier", "cpu", "--dry-run"], "experiments.reproduce.calibrate": ["--tier", "cpu"]}[module]
    out = run([sys.executable, "-m", module, *args], "argparse:ArgumentParser.parse_args", tmp_path)
    assert_one_line(out, tmp_path / "tmp", f"python -m {module}")


def make_tables(tmp_path: Path, out: Path, plant: str = "") -> subprocess.CompletedProcess:
    """`make tables` as the Makefile runs it, on this interpreter, without checking the install (-o install)."""
    return run(["make", "--no-print-directory", "-o", "install", "tables", f"BIN={Path(sys.executable).parent}",
                f"TABLES_ROOT={tmp_path / 'runs'}", f"TABLES_OUT={out}"], plant, tmp_path)


def test_make_tables_unforeseen_and_unwritable_output(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("keep me")
    (tmp_path / "runs").mkdir()
    unwritable = make_tables(tmp_path, blocker / "results")
    assert unwritable.returncode != 0 and "Traceback" not in unwritable.stderr, unwritable.stderr
    [line] = our_lines(unwritable.stderr)
    assert line == f"error: cannot write to --out {blocker / 'results'} (Not a directory: {blocker}); choose a writable folder with --out"
    assert blocker.read_text() == "keep me"
    planted = make_tables(tmp_path, tmp_path / "out", plant="argparse:ArgumentParser.parse_args")
    assert_one_line(planted, tmp_path / "tmp", "python -m analysis", status=2)  # make's status for a failed recipe


def test_the_fault_case_runner_writes_each_case_with_its_outcome(tmp_path):
    """tools/fault_cases.py on two of its cases: a refusal (one line, exit 2) and the launcher's plugin scan (exit 0)."""
    table = tmp_path / "fault_cases.md"
    out = subprocess.run([sys.executable, "-m", "tools.fault_cases", "--only", "delete-seed", "plugin-scan-outside-checkout",
                          "--out", str(table)], cwd=REPO, env=subprocess_env(), capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    text = table.read_text(encoding="utf-8")
    assert "**2 of 2 clean.** Not clean: none." in text, text
    rows = [line for line in text.splitlines() if line.startswith(("| delete-seed |", "| plugin-scan-outside-checkout |"))]
    assert len(rows) == 2 and all(row.endswith("| yes |") for row in rows), rows
    assert "| `$RUN paths.root=$ROOT '~seed'` |" in rows[0] and "| 2 | error: ~seed:" in rows[0], rows[0]


def test_an_error_while_training_leaves_the_run_interrupted_and_resumable(tmp_path):
    out = run([sys.executable, "run.py", f"paths.root={tmp_path}", "optimizer=torch_adam", "trainer.epochs=1"],
              "torch.optim.adam:Adam.step", tmp_path)
    assert_one_line(out, tmp_path / "errors", "run.py")
    [summary] = (tmp_path / "runs").glob("*/summary.json")
    recorded = json.loads(summary.read_text(encoding="utf-8"))
    assert recorded["status"] == "interrupted" and recorded["error"].startswith("ZeroDivisionError: planted in"), recorded


def test_the_traceback_goes_to_the_temporary_directory_where_the_root_cannot_be_written(tmp_path, monkeypatch, capsys):
    import tempfile

    from salsa.unforeseen import report
    blocker = tmp_path / "a_file"
    blocker.write_text("keep me")
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    try:
        raise KeyError("line one\nline two")
    except KeyError as error:
        line = report(error, "run.py", [blocker])
    [printed] = capsys.readouterr().err.splitlines()
    assert printed == f"error: {line}" and "KeyError: 'line one\\nline two'" in line, printed
    path = Path(NAMED.search(printed).group(1))
    assert path.parent == (tmp_path / "tmp").resolve() and "Traceback (most recent call last)" in path.read_text()
    assert blocker.read_text() == "keep me"
