"""The stack's admin API key: given by the environment, or generated once and kept in the data dir."""

import os
import secrets
from pathlib import Path

PREFIX = "zh_admin_"
FILE_NAME = "admin_key"


def load_or_create(data_dir: Path, given: str = "") -> str:
    """`given` when set; else the key stored in `<data_dir>/admin_key`, created (mode 0600) if missing."""
    if given:
        return given
    path = data_dir / FILE_NAME
    if path.exists():
        stored = path.read_text().strip()
        if stored:
            return stored
    key = PREFIX + secrets.token_urlsafe(32)
    # 0600 from creation on: the key is never readable by others, not even for a moment
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(key + "\n")
    path.chmod(0o600)
    return key
