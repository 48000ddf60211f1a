"""Failover time: a session-host is killed with -9, how long until its sessions are connected on the
other host (not a test).

    .venv/bin/python -m bench.failover [--quick] [--rounds 5] [--sessions 100]

Two host processes on the simulator with the default lease TTL (6 s) share N sessions. Each round
kills the host holding the most sessions, times every one of its sessions from the kill to its
`session.connected` on the surviving host (same JID, checked), and starts a replacement host.
The floor is the lease TTL: a dead host's leases must expire before anyone may take its sessions.
"""

import argparse
import asyncio
import time
from collections import Counter

try:
    from bench._session_hosts import Lab, percentile
except ImportError:  # run as a script: bench/ itself is on sys.path
    from _session_hosts import Lab, percentile  # type: ignore[no-redef]


async def measure(rounds: int, sessions: int) -> dict[str, float]:
    samples: list[float] = []
    async with Lab() as lab:
        names = ["host-0", "host-1"]
        for name in names:
            lab.spawn_host(name)
        for name in names:
            await lab.wait_host(name)
        ids = await lab.desire(sessions)
        first = await lab.wait_connected(ids)
        jids = {sid: jid for sid, (_, _, jid) in first.items()}
        for r in range(rounds):
            await asyncio.sleep(1.0)  # heartbeats show the current load
            placement = {sid: hosts[-1][1] for sid, hosts in lab.connected.items() if sid in jids}
            victim, _ = Counter(placement.values()).most_common(1)[0]
            moving = [sid for sid, host in placement.items() if host == victim]
            killed_at = time.monotonic()
            lab.kill_host(victim)
            moved = await lab.wait_connected(moving, since=killed_at, timeout=120, not_on=victim)
            for sid, (t, _, jid) in moved.items():
                assert jid == jids[sid], f"session {sid} came back as {jid}, was {jids[sid]}"
                samples.append(t - killed_at)
            slowest = max(t for t, _, _ in moved.values()) - killed_at
            print(f"round {r + 1}: {len(moving)} sessions moved, slowest {slowest:.2f} s")
            replacement = f"host-{len(names)}"
            names.append(replacement)
            lab.spawn_host(replacement)
            await lab.wait_host(replacement)
        new_qrs = sum(lab.qrs.values()) - len(ids)
    return {
        "failover_p50_s": round(percentile(samples, 50), 2),
        "failover_p99_s": round(percentile(samples, 99), 2),
        "failover_max_s": round(max(samples), 2),
        "failover_samples": float(len(samples)),
        "failover_new_qrs": float(new_qrs),
    }


def run(quick: bool, rounds: int | None = None, sessions: int | None = None) -> dict[str, float]:
    rounds = rounds or (2 if quick else 5)
    sessions = sessions or (20 if quick else 100)
    figures = asyncio.run(measure(rounds, sessions))
    print(
        f"{'rounds':>6} {'sessions':>8} {'samples':>7} {'p50 s':>6} {'p99 s':>6} {'max s':>6} {'new QRs':>7}"
    )
    f = figures
    print(
        f"{rounds:>6} {sessions:>8} {int(f['failover_samples']):>7} {f['failover_p50_s']:>6.2f} "
        f"{f['failover_p99_s']:>6.2f} {f['failover_max_s']:>6.2f} {int(f['failover_new_qrs']):>7}"
    )
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 rounds of 20 sessions")
    parser.add_argument("--rounds", type=int)
    parser.add_argument("--sessions", type=int)
    args = parser.parse_args()
    run(args.quick, args.rounds, args.sessions)


if __name__ == "__main__":
    main()
