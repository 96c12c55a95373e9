"""run.py with a fault handed into the training loop, for the kill and resume tests:
`SALSA_TEST_KILL_AT=<phase>:<n>[:<SIGNAL>] python tests/faulty_run.py [run.py's arguments]` sends this process
SIGNAL (default SIGKILL; SIGTERM, SIGINT, SIGSTOP, ...) the n-th time the loop passes <phase>: "step" (after an
optimizer step, before its record), "save" (after a checkpoint), "eval" (after an evaluation's records) or "final"
(after the final record). The training code never reads this variable: this script hands the loop its hook.
`SALSA_TEST_KILL_AT=write:<file>:<n>[:<SIGNAL>]` sends it from inside the n-th write of a run directory's file
(checkpoint.pt, summary.json, metrics.jsonl, train_loss.f32, config.yaml), once its first bytes are written: the
files module's opener hands the writer a file that sends the signal there."""
import os
import signal
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
import run  # noqa: E402  (run.py, from the repository root just put on the path)


class KillSwitch:
    def __init__(self, spec: str):
        phase, n, name = (spec.split(":") + ["SIGKILL"])[:3]
        self.phase, self.left, self.signal = phase, int(n), getattr(signal, name)

    def __call__(self, phase: str) -> None:
        if phase == self.phase:
            self.left -= 1
            if self.left == 0:
                os.kill(os.getpid(), self.signal)


class Tripwire:
    """A file whose first write() sends `signum` to this process once the data are written."""

    def __init__(self, file, signum: int):
        self._file, self._signum = file, signum

    def write(self, data):
        written = self._file.write(data)
        if self._signum:
            signum, self._signum = self._signum, None
            os.kill(os.getpid(), signum)
        return written

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return self._file.__exit__(*exc)

    def __getattr__(self, name):
        return getattr(self._file, name)


def trip_at_write(spec: str) -> None:
    """write:<file>:<n>[:<SIGNAL>]: the n-th opening of <file> (or of its temporary file) for writing trips."""
    from salsa.contract import files
    from salsa.train import rundir
    name, n, signame = (spec.split(":") + ["SIGKILL"])[1:4]
    opened, left = files.open_plain, [int(n)]

    def open_plain(path, mode="r"):
        f = opened(path, mode)
        if Path(path).name in (name, f".{name}.tmp") and any(c in mode for c in "wa"):
            left[0] -= 1
            if left[0] == 0:
                return Tripwire(f, getattr(signal, signame))
        return f
    files.open_plain = rundir.open_plain = open_plain


if __name__ == "__main__":
    spec = os.environ["SALSA_TEST_KILL_AT"]
    if spec.startswith("write:"):
        trip_at_write(spec)
        run.cli()
    else:
        run.cli(on_phase=KillSwitch(spec))
