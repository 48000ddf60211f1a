"""Session density: memory per session of one session-host process on the simulator (not a test).

    .venv/bin/python -m bench.sessions_density [--quick] [--sizes 1000 5000]

For each size N a fresh host process starts with room for N; its RSS is read from /proc once it is up
and idle, N sessions are asked for, and RSS is read again once all N are connected and their auth_data
is saved. The simulator holds no sockets, so this is ZapHub's own cost per session (runner, state
machine, subscription, timers, leases); a real WhatsApp client adds its own (about 0.8 MB for neonize).
"""

import argparse
import asyncio
import time

try:
    from bench._session_hosts import Lab, rss_mb
except ImportError:  # run as a script: bench/ itself is on sys.path
    from _session_hosts import Lab, rss_mb  # type: ignore[no-redef]

SETTLE = 3.0  # seconds after the last connect: auth_data saves and event publishing finish


async def measure(n: int) -> dict[str, float]:
    async with Lab(ZAPHUB_MAX_CONCURRENT_SESSIONS=str(n)) as lab:
        pid = lab.spawn_host("density")
        await lab.wait_host("density")
        await asyncio.sleep(SETTLE)
        before = rss_mb(pid)
        started = time.monotonic()
        ids = await lab.desire(n)
        await lab.wait_connected(ids, timeout=max(600.0, n * 0.5))
        connect_all = time.monotonic() - started
        await asyncio.sleep(SETTLE)
        after = rss_mb(pid)
        lab.stop_host("density")
    return {
        f"sessions_{n}_rss_before_mb": round(before, 1),
        f"sessions_{n}_rss_after_mb": round(after, 1),
        f"sessions_{n}_rss_per_session_mb": round((after - before) / n, 4),
        f"sessions_{n}_connect_all_s": round(connect_all, 2),
    }


def run(quick: bool, sizes: list[int] | None = None) -> dict[str, float]:
    sizes = sizes or ([200] if quick else [1000, 5000])
    figures: dict[str, float] = {}
    for n in sizes:
        figures |= asyncio.run(measure(n))
    print(
        f"{'sessions':>9} {'RSS before MB':>14} {'RSS after MB':>13} {'MB/session':>11} {'connect all s':>14}"
    )
    for n in sizes:
        p = f"sessions_{n}_"
        print(
            f"{n:>9} {figures[p + 'rss_before_mb']:>14.1f} {figures[p + 'rss_after_mb']:>13.1f} "
            f"{figures[p + 'rss_per_session_mb']:>11.4f} {figures[p + 'connect_all_s']:>14.2f}"
        )
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="200 sessions only")
    parser.add_argument("--sizes", type=int, nargs="*", help="session counts (default 1000 5000)")
    args = parser.parse_args()
    run(args.quick, args.sizes)


if __name__ == "__main__":
    main()
