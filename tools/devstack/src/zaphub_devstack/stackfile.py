"""`<data>/stack.json`: what the running stack is made of (pids, URLs), for scripts and tests."""

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

FILE_NAME = "stack.json"


@dataclass
class ProcessEntry:
    pid: int
    restarts: int = 0


@dataclass
class StackFile:
    pid: int  # the supervisor
    api_url: str
    docs_url: str
    nats_url: str
    database_url: str
    admin_key_file: str
    ready: bool = False
    processes: dict[str, ProcessEntry] = field(default_factory=dict)

    def write(self, data_dir: Path) -> None:
        """Replace the file atomically, so a reader never sees half of it."""
        path = data_dir / FILE_NAME
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(asdict(self), indent=2) + "\n")
        tmp.replace(path)

    @classmethod
    def read(cls, data_dir: Path) -> "StackFile":
        raw = json.loads((data_dir / FILE_NAME).read_text())
        raw["processes"] = {name: ProcessEntry(**entry) for name, entry in raw["processes"].items()}
        return cls(**raw)
