"""Exact rolling-window rate limiting of one tenant: a sliding log of live grants, no I/O.

A grant at time t is allowed iff, for every window of length W and limit L, fewer than L live grants lie
in (t - W, t]; equivalently the L-th most recent live grant is at or before t - W. Times are integers
(the service uses Unix nanoseconds) so that `retry_after` is exact: at `now + retry_after` the grant is
allowed and one unit earlier it is not, as long as nothing else changes the log.
"""

from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar
from uuid import UUID

W = TypeVar("W", bound=str)


@dataclass(frozen=True, slots=True)
class WindowLimit(Generic[W]):
    name: W
    length: int  # same unit as the log's times
    limit: int  # 0 = never grant


@dataclass(frozen=True, slots=True)
class Decision(Generic[W]):
    granted: bool
    retry_after: int = 0  # same unit as the log's times; 0 when granted
    window: W | None = None  # the window that frees last, when denied


@dataclass(frozen=True, slots=True)
class Usage(Generic[W]):
    window: W
    used: int
    limit: int
    resets_at: int | None  # when the oldest counted grant leaves the window


class GrantWindow:
    """The live grants of one tenant, ordered by time, with release by token id.

    Grants older than the longest window are pruned; they can never count again. A limit of 0 denies
    with `retry_after` equal to the window's length (it never frees; the caller comes back later and
    sees the then-current limit).
    """

    def __init__(self) -> None:
        self._times: list[int] = []
        self._tokens: list[UUID] = []
        self._live: dict[UUID, int] = {}
        self.latest = 0  # the latest time seen in any grant; the log's clock never goes back

    def __len__(self) -> int:
        return len(self._times)

    def is_live(self, token: UUID) -> bool:
        return token in self._live

    def times(self) -> list[int]:
        return list(self._times)

    def decide(self, now: int, limits: Sequence[WindowLimit[W]]) -> Decision[W]:
        """Whether one more grant at `now` keeps every window within its limit, and if not, when."""
        worst: Decision[W] | None = None
        n = len(self._times)
        for w in limits:
            if w.limit <= 0:
                wait = w.length
            else:
                in_window = n - bisect_right(self._times, now - w.length)
                if in_window < w.limit:
                    continue
                # The L-th most recent live grant must leave the window first.
                wait = self._times[n - w.limit] + w.length - now
            if worst is None or wait > worst.retry_after:
                worst = Decision(granted=False, retry_after=wait, window=w.name)
        return worst if worst is not None else Decision(granted=True)

    def grant(self, token: UUID, at: int) -> None:
        if token in self._live:
            return
        if not self._times or at >= self._times[-1]:
            self._times.append(at)
            self._tokens.append(token)
        else:  # out of order: only when replaying a log written by skewed clocks
            i = bisect_right(self._times, at)
            self._times.insert(i, at)
            self._tokens.insert(i, token)
        self._live[token] = at
        self.latest = max(self.latest, at)

    def release(self, token: UUID) -> int | None:
        """Remove a live grant so it no longer counts; returns its time, or None if it was not live."""
        at = self._live.pop(token, None)
        if at is None:
            return None
        i = bisect_left(self._times, at)
        while self._tokens[i] != token:
            i += 1
        del self._times[i]
        del self._tokens[i]
        return at

    def prune(self, now: int, longest: int) -> None:
        """Forget grants at or before `now - longest`: no window can count them any more."""
        cut = bisect_right(self._times, now - longest)
        if cut:
            for token in self._tokens[:cut]:
                del self._live[token]
            del self._times[:cut]
            del self._tokens[:cut]

    def usage(self, now: int, limits: Iterable[WindowLimit[W]]) -> list[Usage[W]]:
        out: list[Usage[W]] = []
        n = len(self._times)
        for w in limits:
            first = bisect_right(self._times, now - w.length)
            used = n - first
            resets = self._times[first] + w.length if used else None
            out.append(Usage(window=w.name, used=used, limit=w.limit, resets_at=resets))
        return out
