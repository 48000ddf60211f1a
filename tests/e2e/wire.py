"""Reading the simulator's wire log: what the simulated WhatsApp network received."""

import json
from collections import defaultdict
from pathlib import Path
from typing import Any


def delivered_lines(data_dir: Path) -> list[dict[str, Any]]:
    path = data_dir / "sim" / "delivered.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def whatsapp_ids_by_message(data_dir: Path) -> dict[str, set[str]]:
    ids: dict[str, set[str]] = defaultdict(set)
    for line in delivered_lines(data_dir):
        ids[line["message_id"]].add(line["whatsapp_id"])
    return ids
