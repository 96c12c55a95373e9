"""run.py with a fault handed into the training loop, for the kill and resume tests:
`SALSA_TEST_KILL_AT=<phase>:<n>[:<SIGNAL>] python tests/faulty_run.py [run.py's arguments]` sends this process
SIGNAL (default SIGKILL; SIGTERM, SIGINT, SIGSTOP, ...) the n-th time the loop passes <phase>: "step" (after an
optimizer step, before its record), "save" (after a checkpoint), "eval" (after an evaluation's records) or "final"
(after the final record). The training code never reads this variable: this script hands the loop its hook."""
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


if __name__ == "__main__":
    run.cli(on_phase=KillSwitch(os.environ["SALSA_TEST_KILL_AT"]))
