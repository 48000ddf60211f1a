"""A steady send load for fault tests: texts POSTed round-robin over tenants' sessions and API
replicas while the test breaks things, with every answer kept for the checks afterwards.

    async with SendLoad(stack.api_urls, targets, rate=40) as load:
        ...  # kill, stop, restart
    await load.wait_done(timeout=120)
    assert_each_handed_over_once(stack.data_dir, load.accepted)
"""

import asyncio
import contextlib
import itertools
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
from e2e.client import Tenant, eventually
from e2e.wire import delivered_lines

DONE = {"sent", "delivered", "read"}
PAGE = 500  # the API's largest page of messages
UNLIMITED = {
    "ZAPHUB_RATE_PER_MINUTE": "1000000",
    "ZAPHUB_RATE_PER_HOUR": "1000000",
    "ZAPHUB_RATE_PER_DAY": "1000000",
}


@dataclass(frozen=True)
class Answer:
    """One POST …/messages: when it was sent, how long it took, what came back."""

    at: float
    seconds: float
    status: int  # 0: no API replica answered (connection refused or reset)
    retry_after: str | None = None
    problem_type: str | None = None
    message_id: str | None = None


@dataclass
class SendLoad:
    """`rate` messages a second spread over `targets` (tenant, session id) and `api_urls`."""

    api_urls: list[str]
    targets: list[tuple[Tenant, str]]
    rate: float = 30.0
    workers: int = 4
    request_timeout: float = 30.0
    answers: list[Answer] = field(default_factory=list)
    owners: dict[str, Tenant] = field(default_factory=dict)  # message id -> its tenant
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _stop: asyncio.Event = field(default_factory=asyncio.Event)
    _count: "itertools.count[int]" = field(default_factory=itertools.count)

    @property
    def accepted(self) -> list[str]:
        """Ids of the messages the API answered 202 for, in the order the answers came."""
        return [a.message_id for a in self.answers if a.status == 202 and a.message_id]

    def since(self, started: float) -> list[Answer]:
        return [a for a in self.answers if a.at >= started]

    async def __aenter__(self) -> "SendLoad":
        self._tasks = [asyncio.create_task(self._worker(i)) for i in range(self.workers)]
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    async def stop(self) -> None:
        self._stop.set()
        await asyncio.gather(*self._tasks)

    async def _worker(self, worker: int) -> None:
        interval = self.workers / self.rate
        async with httpx.AsyncClient(timeout=self.request_timeout) as http:
            due = time.monotonic() + worker / self.rate
            while not self._stop.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), max(0.0, due - time.monotonic()))
                    return
                due = max(due + interval, time.monotonic())
                await self._send(http, next(self._count))

    async def _send(self, http: httpx.AsyncClient, n: int) -> None:
        """POST one text, as a client behind a load balancer would: an API replica that does not
        answer (stopping, restarting) is skipped for the next one, under the same Idempotency-Key."""
        tenant, session_id = self.targets[n % len(self.targets)]
        key = f"load-{n}-{uuid.uuid4().hex}"
        started = time.monotonic()
        for attempt in range(len(self.api_urls)):
            url = self.api_urls[(n + attempt) % len(self.api_urls)]
            try:
                response = await http.post(
                    f"{url}/api/v1/sessions/{session_id}/messages",
                    json={"to": "+5511988887777", "type": "text", "text": f"load {n}"},
                    headers=tenant.headers | {"Idempotency-Key": key},
                )
            except httpx.TransportError:
                continue
            self._record(tenant, started, response)
            return
        self.answers.append(Answer(started, time.monotonic() - started, 0))

    def _record(self, tenant: Tenant, started: float, response: httpx.Response) -> None:
        body = response.json() if response.headers.get("content-type", "").endswith("json") else {}
        answer = Answer(
            at=started,
            seconds=time.monotonic() - started,
            status=response.status_code,
            retry_after=response.headers.get("retry-after"),
            problem_type=body.get("type") if response.status_code >= 400 else None,
            message_id=body.get("id") if response.status_code == 202 else None,
        )
        if answer.message_id:
            self.owners[answer.message_id] = tenant
        self.answers.append(answer)

    async def wait_done(self, timeout: float, data_dir: Path | None = None) -> dict[str, dict[str, Any]]:
        """Until every accepted message has reached sent (or later) as the API shows it; the messages
        by id, with their history. With `data_dir`, first until the simulator's wire log holds them
        all (a cheap file read while the backlog drains)."""
        deadline = time.monotonic() + timeout
        wanted = set(self.accepted)
        if data_dir is not None:

            async def on_the_wire() -> bool:
                return wanted <= {line["message_id"] for line in delivered_lines(data_dir)}

            await eventually(on_the_wire, timeout, f"the {len(wanted)} accepted messages on the wire")
        done: dict[str, dict[str, Any]] = {}
        sessions = {(id(tenant), session): (tenant, session) for tenant, session in self.targets}

        async def check() -> bool:
            for tenant, session_id in sessions.values():
                for message in await _messages_of(tenant, session_id):
                    if message["id"] in wanted and message["status"] in DONE:
                        done[message["id"]] = message
            return len(done) == len(wanted)

        left = max(1.0, deadline - time.monotonic())
        await eventually(check, left, f"{len(wanted) - len(done)} accepted messages to show sent")
        return done


async def _messages_of(tenant: Tenant, session_id: str) -> list[dict[str, Any]]:
    """Every message of a session, page by page (newest first)."""
    found: list[dict[str, Any]] = []
    while True:
        response = await tenant.http.get(
            f"/api/v1/sessions/{session_id}/messages",
            params={"limit": PAGE, "offset": len(found)},
            headers=tenant.headers,
        )
        assert response.status_code == 200, response.text
        page = response.json()
        found += page
        if len(page) < PAGE:
            return found


def assert_each_handed_over_once(data_dir: Path, accepted: list[str]) -> None:
    """The simulator's wire log (`delivered.jsonl`) is the oracle: every accepted message reached
    WhatsApp, and no message (accepted or not) reached it twice."""
    handovers = Counter(line["message_id"] for line in delivered_lines(data_dir))
    missing = set(accepted) - set(handovers)
    assert not missing, f"{len(missing)} of {len(accepted)} accepted messages never reached WhatsApp"
    twice = {m: n for m, n in handovers.items() if n > 1}
    assert not twice, f"messages handed over more than once: {twice}"
