"""Real neonize clients constructed and connected offline in one process: RSS per client.

The Go client and its store exist only after `connect()`; offline it keeps retrying in the
background, which is the state a client waiting for WhatsApp is in. Runs in a child process so
the figure is that process's own resident memory.

    python -m bench.neonize_clients [--quick]
"""

import asyncio
import json
import subprocess
import sys
import tempfile
from pathlib import Path


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def _measure(count: int, store_dir: Path) -> dict[str, float]:
    from neonize.aioze.client import NewAClient

    from zaphub_session_host.transport.neonize import gate

    before = _rss_mb()
    clients = [NewAClient(str(store_dir / f"client-{i}.sqlite3")) for i in range(count)]
    # Started and stopped through the gate, as the session host does: neonize's Go client table has
    # no lock, and unguarded starts crashed one run in three (transport/neonize/gate.py).
    await asyncio.gather(*(gate.start(client) for client in clients))
    await asyncio.sleep(3 + count / 50)  # let every Go client start and reach its retry loop
    after = _rss_mb()
    await asyncio.gather(*(gate.stop(client) for client in clients))
    return {"clients": count, "rss_before_mb": before, "rss_after_mb": after}


def _child(count: int) -> None:
    with tempfile.TemporaryDirectory(prefix="neonize-bench-") as tmp:
        figures = asyncio.run(_measure(count, Path(tmp)))
    print(json.dumps(figures), flush=True)


def run(quick: bool) -> dict[str, float]:
    figures: dict[str, float] = {}
    for count in (50,) if quick else (50, 200):
        out = subprocess.run(
            [sys.executable, "-m", "bench.neonize_clients", "--child", str(count)],
            capture_output=True, text=True, timeout=300, check=True,
        )  # fmt: skip
        result = json.loads(out.stdout.strip().splitlines()[-1])
        per_client = (result["rss_after_mb"] - result["rss_before_mb"]) / count
        figures[f"neonize_{count}_rss_per_client_mb"] = per_client
        figures["neonize_clients"] = count
        figures["neonize_rss_per_client_mb"] = per_client
    return figures


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        _child(int(sys.argv[2]))
        sys.exit(0)
    print(json.dumps(run("--quick" in sys.argv), indent=2))
