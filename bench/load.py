"""A closed-loop HTTP load generator, run as its own process so it does not share the API's loop.

    python -m bench.load <api_url> <api_key> <seconds> <connections> <session_id>...

Each connection POSTs a text message, waits for the 202, and POSTs the next. Prints one JSON line:
requests, errors, seconds and latency percentiles in milliseconds.
"""

import asyncio
import json
import sys
import time

import aiohttp


async def main(url: str, key: str, seconds: float, connections: int, sessions: list[str]) -> None:
    latencies: list[float] = []
    errors = 0
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    body = json.dumps({"to": "+5511988887777", "type": "text", "text": "benchmark message"}).encode()
    connector = aiohttp.TCPConnector(limit=connections)
    async with aiohttp.ClientSession(url, connector=connector, headers=headers) as http:
        deadline = time.perf_counter() + seconds

        async def worker(i: int) -> None:
            nonlocal errors
            path = f"/api/v1/sessions/{sessions[i % len(sessions)]}/messages"
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                async with http.post(path, data=body) as response:
                    await response.read()
                    if response.status != 202:
                        errors += 1
                        continue
                latencies.append(time.perf_counter() - started)

        began = time.perf_counter()
        await asyncio.gather(*(worker(i) for i in range(connections)))
        elapsed = time.perf_counter() - began
    latencies.sort()

    def pct(p: float) -> float:
        return 1000 * latencies[min(len(latencies) - 1, int(p * len(latencies)))] if latencies else 0.0

    print(
        json.dumps(
            {
                "requests": len(latencies),
                "errors": errors,
                "seconds": elapsed,
                "p50_ms": pct(0.5),
                "p99_ms": pct(0.99),
            }
        )
    )


if __name__ == "__main__":
    url, key, seconds, connections, *session_ids = sys.argv[1:]
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    asyncio.run(main(url, key, float(seconds), int(connections), session_ids))
