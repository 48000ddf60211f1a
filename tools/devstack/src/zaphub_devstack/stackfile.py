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
class NatsNode:
    """One nats-server of the stack: `nats` alone, `n1`..`n3` in a cluster (their `server_name`)."""

    name: str
    pid: int | None
    client_url: str
    monitor_url: str = ""


@dataclass
class StackFile:
    pid: int  # the supervisor
    api_url: str
    docs_url: str
    nats_url: str  # every node's URL, comma-separated, as ZAPHUB_NATS_URL takes it
    database_url: str
    admin_key_file: str
    ready: bool = False
    processes: dict[str, ProcessEntry] = field(default_factory=dict)
    nats_nodes: list[NatsNode] = field(default_factory=list)
    api_urls: list[str] = field(default_factory=list)  # one per API instance, `api_url` first

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
        raw["nats_nodes"] = [NatsNode(**node) for node in raw.get("nats_nodes", [])]
        return cls(**raw)
