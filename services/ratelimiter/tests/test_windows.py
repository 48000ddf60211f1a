"""The sliding-window domain against a brute-force oracle (hypothesis)."""

import uuid
from dataclasses import dataclass, field

from hypothesis import given, settings
from hypothesis import strategies as st

from zaphub_ratelimiter.windows import GrantWindow, WindowLimit

LIMITS = (
    WindowLimit(name="short", length=10, limit=3),
    WindowLimit(name="mid", length=30, limit=5),
    WindowLimit(name="long", length=100, limit=8),
)


@dataclass
class Oracle:
    """Every live grant, checked window by window with no cleverness."""

    limits: tuple[WindowLimit[str], ...]
    grants: dict[uuid.UUID, int] = field(default_factory=dict)

    def count(self, t: int, w: WindowLimit[str]) -> int:
        return sum(1 for g in self.grants.values() if t - w.length < g <= t)

    def allows(self, t: int) -> bool:
        return all(self.count(t, w) < w.limit for w in self.limits)

    def violating(self, t: int) -> set[str]:
        return {w.name for w in self.limits if self.count(t, w) >= w.limit}


op = st.one_of(
    st.tuples(st.just("advance"), st.integers(min_value=0, max_value=40)),
    # Boundaries: exactly a window length, and exactly the last retry_after (what the dispatcher does).
    st.tuples(st.just("advance"), st.sampled_from([1, 7, 10, 15, 20, 30, 100])),
    st.tuples(st.just("advance_retry"), st.just(0)),
    st.tuples(st.just("acquire"), st.integers(min_value=0, max_value=25)),
    st.tuples(st.just("release"), st.integers(min_value=0, max_value=25)),
)
limits_st = st.sampled_from(
    [
        LIMITS,
        (LIMITS[0],),
        (WindowLimit(name="a", length=7, limit=1), WindowLimit(name="b", length=20, limit=2)),
        (WindowLimit(name="zero", length=15, limit=0), LIMITS[1]),
    ]
)


@settings(max_examples=1000, deadline=None)
@given(limits=limits_st, ops=st.lists(op, max_size=120))
def test_grant_decisions_equal_a_brute_force_sliding_window(
    limits: tuple[WindowLimit[str], ...], ops: list[tuple[str, int]]
) -> None:
    """Grants match the oracle, no window ever exceeds its limit, and retry_after is exact."""
    tokens = [uuid.UUID(int=i + 1) for i in range(26)]
    window = GrantWindow()
    oracle = Oracle(limits)
    longest = max(w.length for w in limits)
    now = 1000
    last_retry = 0
    for kind, arg in ops:
        if kind in ("advance", "advance_retry"):
            now += last_retry if kind == "advance_retry" else arg
            # A grant older than every window is forgotten: it can never count again.
            window.prune(now, longest)
            oracle.grants = {k: g for k, g in oracle.grants.items() if g > now - longest}
            continue
        token = tokens[arg]
        if kind == "release":
            released = window.release(token)
            assert (released is not None) == (token in oracle.grants)
            oracle.grants.pop(token, None)
            continue
        if token in oracle.grants:
            assert window.is_live(token)  # a repeated acquire of a live grant spends nothing
            continue
        decision = window.decide(now, limits)
        assert decision.granted == oracle.allows(now)
        if decision.granted:
            window.grant(token, now)
            oracle.grants[token] = now
            for w in limits:
                assert oracle.count(now, w) <= w.limit
            continue
        assert decision.window in oracle.violating(now)
        last_retry = decision.retry_after
        if all(w.limit > 0 for w in limits if w.name in oracle.violating(now)):
            # Exact: allowed at now + retry_after, denied one unit before.
            assert decision.retry_after > 0
            assert oracle.allows(now + decision.retry_after)
            assert not oracle.allows(now + decision.retry_after - 1)
        else:
            assert decision.retry_after >= min(w.length for w in limits if w.limit == 0)


def test_release_gives_the_token_back() -> None:
    """After a release the window counts one grant fewer and grants again at once."""
    window = GrantWindow()
    limit = (WindowLimit(name="minute", length=60, limit=2),)
    a, b, c = (uuid.UUID(int=i) for i in (1, 2, 3))
    window.grant(a, 0)
    window.grant(b, 1)
    assert not window.decide(2, limit).granted
    assert window.release(a) == 0
    assert window.decide(2, limit).granted
    window.grant(c, 2)
    assert window.decide(3, limit).retry_after == 1 + 60 - 3


def test_usage_counts_each_window_and_when_it_resets() -> None:
    """Usage reports grants inside each window and when the oldest leaves it."""
    window = GrantWindow()
    limits = (WindowLimit(name="m", length=60, limit=5), WindowLimit(name="h", length=3600, limit=50))
    for i, t in enumerate((10, 100, 130)):
        window.grant(uuid.UUID(int=i + 1), t)
    usage = {u.window: u for u in window.usage(140, limits)}
    assert (usage["m"].used, usage["m"].resets_at) == (2, 160)
    assert (usage["h"].used, usage["h"].resets_at) == (3, 3610)
