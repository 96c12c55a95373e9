"""The W&B mirror's own copy of a run: run-<id>.wandb, the transaction log that wandb writes under the run directory's
wandb/ (offline and online alike; `wandb sync` uploads it). wandb writes it in its service process, so a write that
fails there (a full disk, a file-size limit) never reaches the run: the log is read back once the mirror has finished
instead, and a whole one ends in the run's exit record.

The format: a 7-byte header (":W&B", 0xBEE1, version 0), then 32 KiB blocks of chunks (crc32 4, length 2, type 1:
full, first, middle, last) that carry wandb.proto Record messages."""
from __future__ import annotations

import os
import resource
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path

HEADER = b":W&B" + struct.pack("<HB", 0xBEE1, 0)
BLOCK = 32 * 1024
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


class Torn(Exception):
    """Where a transaction log stops being whole."""


def payloads(data: bytes) -> Iterator[bytes]:
    """Each record's bytes, in order; Torn where the log is cut or damaged."""
    if not data.startswith(HEADER):
        raise Torn(f"has no W&B header (its first bytes: {data[:7]!r})")
    pending, pos = b"", len(HEADER)
    while pos + 7 <= len(data):
        if BLOCK - pos % BLOCK < 7:  # a block's tail too short for a chunk header is padding
            pos += BLOCK - pos % BLOCK
            continue
        crc, length, kind = struct.unpack("<IHB", data[pos:pos + 7])
        if kind == 0 and length == 0:  # zero padding at the end of a block
            pos += BLOCK - pos % BLOCK
            continue
        chunk = data[pos + 7:pos + 7 + length]
        if len(chunk) < length or zlib.crc32(chunk, zlib.crc32(bytes([kind]))) != crc:
            raise Torn(f"is cut or damaged at byte {pos} of {len(data)}")
        pos += 7 + length
        pending = chunk if kind in (FULL, FIRST) else pending + chunk
        if kind in (FULL, LAST):
            yield pending
            pending = b""
    if pending or pos < len(data):
        raise Torn(f"ends inside a record at byte {len(data)}")


def lacks(path: Path) -> str | None:
    """What the finished mirror's transaction log lacks, with the likely cause; None when it is whole."""
    from wandb.proto import wandb_internal_pb2 as pb

    try:
        data = path.read_bytes()
        ended = any(pb.Record.FromString(p).WhichOneof("record_type") == "exit" for p in payloads(data))
        torn = None if ended else f"holds no exit record ({len(data)} bytes)"
    except FileNotFoundError:
        torn, data = "was never written", b""
    except Torn as e:
        torn = str(e)
    return None if torn is None else f"{path.name} {torn}{_cause(path, len(data))}"


def _cause(path: Path, size: int) -> str:
    """The reasons the system would have refused wandb's writes to path."""
    causes = []
    with_room = os.statvfs(path.parent if path.parent.exists() else path.parent.parent)
    if with_room.f_bavail * with_room.f_frsize < BLOCK:
        causes.append(f"the disk holding {path.parent} is full")
    limit = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
    if limit != resource.RLIM_INFINITY and size + BLOCK > limit:
        causes.append(f"the file-size limit (ulimit -f) is {limit} bytes")
    return f"; {' and '.join(causes)}" if causes else ""
