"""Waiting for the API to say the stack is usable (`GET /ready` answers 200)."""

import asyncio
import urllib.error
import urllib.request

# Loopback only: never through an http_proxy from the environment.
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _answers_ready(url: str) -> bool:
    try:
        with _DIRECT.open(url, timeout=2) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError, ValueError):
        return False


async def wait_until_ready(api_url: str, interval: float = 0.25) -> None:
    """Poll until `<api_url>/ready` answers 200; forever, the caller cancels."""
    while True:
        if await asyncio.to_thread(_answers_ready, f"{api_url}/ready"):
            return
        await asyncio.sleep(interval)
