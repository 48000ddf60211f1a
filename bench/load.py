"""An HTTP load generator, run as its own process so it does not share the API's loop.

    python -m bench.load [--rate R] [--simulate] <api_url> <api_key> <seconds> <connections> <session_id>...

Each connection POSTs a text message over one keep-alive HTTP/1.1 connection, waits for the 202 and
POSTs the next: a closed loop. With `--simulate`, it POSTs to the session's `simulate` route instead: a
contact of its own per connection sends the session a text (inbound traffic). With `--rate`, the
connections keep a schedule of R requests a second between them, as wrk2 does: a request waits for its
time, and one that is late goes at once.

Like wrk, it writes prepared request bytes and reads just enough of each response
(status line, Content-Length, body), so the load costs the two shared cores as little as it can; an
HTTP client library cost about three times as much CPU per request here. Prints one JSON line:
requests, errors, seconds and latency percentiles in milliseconds.
"""

import argparse
import asyncio
import json
import os
import time
from urllib.parse import urlsplit

import uvloop

BODY = json.dumps({"to": "+5511988887777", "type": "text", "text": "benchmark message"}).encode()


def simulate_body(contact: int) -> bytes:
    return json.dumps(
        {"action": "message", "from": f"+55219{contact:08d}", "content": {"type": "text", "text": "inbound"}}
    ).encode()


def request_bytes(host: str, path: str, key: str, body: bytes = BODY) -> bytes:
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {key}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


async def read_response(reader: asyncio.StreamReader) -> int:
    """The status code of the next response; its body is read and dropped."""
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
            break
    if length:
        await reader.readexactly(length)
    return status


async def main(
    url: str,
    key: str,
    seconds: float,
    connections: int,
    sessions: list[str],
    rate: float | None,
    simulate: bool = False,
) -> None:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + seconds

    async def worker(i: int) -> None:
        nonlocal errors
        session = sessions[i % len(sessions)]
        if simulate:
            # A contact per connection and process (the pid apart): chats do not contend on one row.
            contact = (os.getpid() % 10_000) * 1000 + i
            request = request_bytes(
                f"{host}:{port}", f"/api/v1/sessions/{session}/simulate", key, simulate_body(contact)
            )
        else:
            request = request_bytes(f"{host}:{port}", f"/api/v1/sessions/{session}/messages", key)
        reader, writer = await asyncio.open_connection(host, port)
        # With a rate, connection i's k-th request is due at began + (i + k * connections) / rate.
        due = began + i / rate if rate else 0.0
        try:
            while time.perf_counter() < deadline:
                if rate:
                    if due >= deadline:
                        break
                    await asyncio.sleep(due - time.perf_counter())
                    due += connections / rate
                started = time.perf_counter()
                writer.write(request)
                if await read_response(reader) != 202:
                    errors += 1
                    continue
                latencies.append(time.perf_counter() - started)
        finally:
            writer.close()

    began = time.perf_counter()
    workers = [asyncio.create_task(worker(i)) for i in range(connections)]
    # A request the server never answers must not hold the bench: its connection is given up.
    _, unanswered = await asyncio.wait(workers, timeout=seconds + 15)
    for task in unanswered:
        task.cancel()
    elapsed = min(time.perf_counter() - began, seconds + 1)
    latencies.sort()

    def pct(p: float) -> float:
        return 1000 * latencies[min(len(latencies) - 1, int(p * len(latencies)))] if latencies else 0.0

    print(
        json.dumps(
            {
                "requests": len(latencies),
                "errors": errors,
                "unanswered": len(unanswered),  # connections whose last request got no answer
                "seconds": elapsed,
                "p50_ms": pct(0.5),
                "p99_ms": pct(0.99),
                # Its own CPU, for the machine's budget: it runs on the same cores as the stack.
                "cpu_s": time.process_time(),
            }
        )
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rate", type=float, help="requests a second over all connections, paced")
    parser.add_argument("--simulate", action="store_true", help="inbound: POST to the simulate route")
    parser.add_argument("url")
    parser.add_argument("key")
    parser.add_argument("seconds", type=float)
    parser.add_argument("connections", type=int)
    parser.add_argument("sessions", nargs="+")
    args = parser.parse_args()
    uvloop.run(
        main(args.url, args.key, args.seconds, args.connections, args.sessions, args.rate, args.simulate)
    )
