"""auth_data of a neonize session as bytes: a consistent snapshot of its live whatsmeow SQLite store, and
the store file written back from such a snapshot."""

import os
import sqlite3
import tempfile
from pathlib import Path

SQLITE_MAGIC = b"SQLite format 3\x00"


def snapshot_sqlite(path: Path) -> bytes | None:
    """A consistent copy of a live SQLite file (backup API into a temp file), or None if absent."""
    if not path.exists():
        return None
    fd, tmp_name = tempfile.mkstemp(prefix=".snapshot-", suffix=".sqlite3", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        src = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
        try:
            dst = sqlite3.connect(tmp)
            try:
                src.backup(dst)
            finally:
                dst.close()
        finally:
            src.close()
        return tmp.read_bytes()
    finally:
        tmp.unlink(missing_ok=True)


def seed_sqlite(path: Path, auth_data: bytes | None) -> None:
    """Write the store file from auth_data (atomically); None removes a stale store (fresh pairing)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    for suffix in ("-wal", "-shm", "-journal"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    if auth_data is None:
        path.unlink(missing_ok=True)
        return
    tmp = path.with_suffix(".seed")
    tmp.write_bytes(auth_data)
    os.replace(tmp, path)


def is_sqlite(data: bytes | None) -> bool:
    return data is not None and data.startswith(SQLITE_MAGIC)
