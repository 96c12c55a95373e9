"""The stop signals (SIGINT: Ctrl-C; SIGTERM: a scheduler or `kill` asking the run to stop) and the writes they must
not cut short (docs/run-directory.md).

While a run trains (`stops_raise`) a stop signal raises KeyboardInterrupt(signum) wherever the program is, so a
long step or evaluation stops at once. During a write (`signals_held`, around every writer of a run directory's
files) it is held instead and raised the moment the write has ended: the file is whole, and the signal cannot be
lost in a library that swallows or rewraps an exception raised inside its callbacks (torch.save turns it into a
RuntimeError). A stop signal whose KeyboardInterrupt went astray all the same is `pending` until the run stops; the
loop raises it again after its next step (`raise_pending`). Signals are handled in the main thread only: elsewhere
these do nothing."""
from __future__ import annotations

import contextlib
import signal
import threading

STOPS = (signal.SIGINT, signal.SIGTERM)
_received: list[int] = []   # the stop signals received since stops_raise began


def _main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


def _stop(signum, _frame):
    _received.append(signum)
    raise KeyboardInterrupt(signum)


@contextlib.contextmanager
def stops_raise():
    """SIGTERM, and SIGINT unless it is ignored (a shell's background job), raise KeyboardInterrupt(signum)."""
    if not _main_thread():
        yield
        return
    previous = {}
    _received.clear()
    try:
        for signum in STOPS:
            if signal.getsignal(signum) is not signal.SIG_IGN:
                previous[signum] = signal.signal(signum, _stop)
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        _received.clear()


def raise_pending() -> None:
    """KeyboardInterrupt for a stop signal received while training whose exception did not stop the run."""
    if _received:
        raise KeyboardInterrupt(_received[0])


def pending() -> int | None:
    """The first stop signal received since stops_raise began (None: none)."""
    return _received[0] if _received else None


@contextlib.contextmanager
def signals_held():
    """A stop signal that arrives inside is held, and delivered (to the handler it would have met) as soon as the
    block ends, also when the block failed. Nested holds deliver to the outer one."""
    if not _main_thread():
        yield
        return
    held, previous = [], {}

    def hold(signum, _frame):
        held.append(signum)
    try:
        for signum in STOPS:
            if signal.getsignal(signum) not in (signal.SIG_IGN, None):  # None: a handler not set from Python
                previous[signum] = signal.signal(signum, hold)
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        if held:
            signal.raise_signal(held[0])
