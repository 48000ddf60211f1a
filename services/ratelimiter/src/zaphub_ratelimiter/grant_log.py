"""The tenants' grant logs on JetStream: append with compare-and-set, read back by subject.

Each tenant's log is the subject `subjects.ratelimit_grants(tenant)` of the `ZAPHUB_RATELIMIT` stream.
An append carries `Nats-Expected-Last-Subject-Sequence`, so it lands only if the writer had applied every
earlier record of the tenant: that makes every replica's decision exact, whichever replica wrote before.
"""

import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import UUID

import nats.errors
from nats.aio.msg import Msg
from nats.js.errors import APIError
from pydantic import ValidationError

from zaphub_contracts import streams, subjects
from zaphub_contracts.ratelimit import GrantLogRecord
from zaphub_runtime.bus import Bus
from zaphub_runtime.codec import decode

log = logging.getLogger(__name__)

EXPECTED_LAST_SUBJECT_SEQ = "Nats-Expected-Last-Subject-Sequence"
WRONG_LAST_SEQUENCE = 10071  # JetStream error code of a failed compare-and-set
WRONG_LAST_PREFIX = "wrong last sequence: "
NOT_FOUND = 404


class GrantLogUnavailable(Exception):
    """JetStream did not answer (in time); the decision is unknown and the caller should retry."""


class Conflict(Exception):
    """Another writer appended to the tenant's log first."""

    def __init__(self, last_seq: int) -> None:
        super().__init__(f"tenant log is at {last_seq}")
        self.last_seq = last_seq


@dataclass(frozen=True, slots=True)
class Entry:
    seq: int
    record: GrantLogRecord


class GrantLog:
    def __init__(
        self,
        bus: Bus,
        stream: str = streams.RATELIMIT.name,
        timeout: float = 5.0,
        batch: int = 1000,
    ) -> None:
        self._bus = bus
        self._nc = bus.nc  # reads: the direct and leader gets of the stream
        self._stream = stream
        self._timeout = timeout
        self._batch = batch
        self._direct_get = f"$JS.API.DIRECT.GET.{stream}"
        self._msg_get = f"$JS.API.STREAM.MSG.GET.{stream}"

    async def append(self, tenant: UUID, record: GrantLogRecord, expected_seq: int) -> int:
        """Append if the tenant's last sequence is still `expected_seq`; returns the new sequence."""
        headers = {EXPECTED_LAST_SUBJECT_SEQ: str(expected_seq)}
        try:
            ack = await self._bus.publish(
                subjects.ratelimit_grants(tenant), record, timeout=self._timeout, headers=headers
            )
        except APIError as exc:
            if exc.err_code == WRONG_LAST_SEQUENCE:
                raise Conflict(_last_seq_of(exc.description)) from exc
            raise GrantLogUnavailable(str(exc)) from exc
        except (nats.errors.Error, TimeoutError) as exc:
            raise GrantLogUnavailable(repr(exc)) from exc
        return ack.seq

    async def last_seq(self, tenant: UUID) -> int:
        """The tenant's last sequence, read from the stream leader (0 when the log is empty).

        The leader answers STREAM.MSG.GET, unlike DIRECT.GET which any replica of a clustered stream may
        answer from behind; a denial or a repeated grant is only as exact as this read.
        """
        body = json.dumps({"last_by_subj": subjects.ratelimit_grants(tenant)}).encode()
        try:
            reply = await self._nc.request(self._msg_get, body, timeout=self._timeout)
        except (nats.errors.Error, TimeoutError) as exc:
            raise GrantLogUnavailable(repr(exc)) from exc
        answer = json.loads(reply.data)
        error = answer.get("error")
        if error:
            if error.get("code") == NOT_FOUND:
                return 0
            raise GrantLogUnavailable(str(error))
        return int(answer["message"]["seq"])

    async def read(self, tenant: UUID, after_seq: int = 0, since: datetime | None = None) -> list[Entry]:
        """Every record of the tenant after `after_seq` (or stored since `since`), in log order.

        Uses batched direct gets (nats-server 2.11+): one request streams up to `batch` records.
        """
        subject = subjects.ratelimit_grants(tenant)
        out: list[Entry] = []
        request: dict[str, object] = {"next_by_subj": subject, "batch": self._batch}
        if since is not None and after_seq == 0:
            request["start_time"] = since.astimezone(UTC).isoformat().replace("+00:00", "Z")
        else:
            request["seq"] = after_seq + 1
        while True:
            page, more = await self._read_page(request)
            out.extend(page)
            if not more or not page:
                return out
            request = {"next_by_subj": subject, "batch": self._batch, "seq": page[-1].seq + 1}

    async def _read_page(self, request: dict[str, object]) -> tuple[list[Entry], bool]:
        inbox = self._nc.new_inbox()
        sub = await self._nc.subscribe(inbox)
        entries: list[Entry] = []
        try:
            await self._nc.publish(self._direct_get, json.dumps(request).encode(), reply=inbox)
            while True:
                try:
                    msg = await sub.next_msg(timeout=self._timeout)
                except (nats.errors.Error, TimeoutError) as exc:
                    raise GrantLogUnavailable(f"reading the grant log: {exc!r}") from exc
                headers = msg.headers or {}
                status = headers.get("Status")
                if status == "404":
                    return entries, False
                if status == "204":  # end of batch
                    return entries, int(headers.get("Nats-Num-Pending", "0")) > 0
                if status:
                    raise GrantLogUnavailable(f"direct get answered {status} {headers.get('Description')}")
                entries.append(_entry(msg))
        finally:
            await sub.unsubscribe()


def _entry(msg: Msg) -> Entry:
    headers = msg.headers or {}
    seq = int(headers["Nats-Sequence"])
    try:
        return Entry(seq=seq, record=decode(GrantLogRecord, msg.data))
    except ValidationError:
        # Something else wrote here; skipping keeps the tenant serviceable and the log tells why.
        log.warning("unreadable grant log record", extra={"fields": {"seq": seq}})
        return Entry(seq=seq, record=GrantLogRecord(at_ns=0))


def _last_seq_of(description: str | None) -> int:
    text = description or ""
    if text.startswith(WRONG_LAST_PREFIX):
        try:
            return int(text[len(WRONG_LAST_PREFIX) :])
        except ValueError:
            pass
    return -1  # unknown: the caller reloads the tenant
