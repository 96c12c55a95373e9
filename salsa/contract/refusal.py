"""The system's refusal of a write, in one line: the file, the OS reason (its errno name and text) and what to do.
Standard library only: run.py's check of paths.root uses it before torch or Hydra's output."""
from __future__ import annotations

import errno
from pathlib import Path

from salsa.registry import UserError

# what a write failure means, and what to do about it
REMEDIES = {
    errno.ENOSPC: ("the disk is full", "free space (or choose paths.root on another disk)"),
    errno.EDQUOT: ("the disk quota is used up", "free space within the quota (or choose paths.root elsewhere)"),
    errno.EFBIG: ("the file is larger than allowed", "raise the file-size limit (ulimit -f) or choose a file system "
                  "that takes larger files"),
    errno.EROFS: ("the file system is read-only", "make it writable (or choose paths.root elsewhere)"),
}
FULL = (errno.ENOSPC, errno.EDQUOT)   # the machine's fault, not the choice of place: exit 1


class Fault(UserError):
    """The machine refused (a full disk, an I/O error): a clear message and exit 1, no traceback."""
    exit_code = 1


def refusal(error: OSError, where: Path | str) -> str:
    """'<what>: cannot write <file> (<ERRNO>: <text>); <remedy>' (the file: the error's own, else `where`)."""
    where = error.filename or where
    reason = f"{errno.errorcode.get(error.errno, 'no errno')}: {error.strerror or error}"
    if error.errno in REMEDIES:
        what, remedy = REMEDIES[error.errno]
        return f"{what}: cannot write {where} ({reason}); {remedy}"
    return f"{where}: {reason}; fix that"
