"""The pace at which a tenant's waiting webhook deliveries are looked at again while its POSTs fill its
slots: one after the other, as fast as a slot frees, however many wait."""

from uuid import uuid4

import pytest

from zaphub_dispatcher.webhook_pacing import FIRST_GUESS, Pacer


def test_turns_are_handed_out_one_after_the_other_a_slot_s_time_apart() -> None:
    """With POSTs of 2 s on 4 slots a slot frees every 0.5 s: the waiting deliveries come back 0.5 s,
    1 s, 1.5 s ... later (give or take the 10 % spread), not all at once."""
    pacer, tenant = Pacer(slots=4), uuid4()
    for _ in range(4):
        pacer.began(tenant, 0.0)
    for started in (0.0, 0.0):
        pacer.finished(tenant, started, 2.0)
    pacer.began(tenant, 2.0)
    # The moving average moved from the first guess towards 2 s; set it there for a round figure.
    pacer._tenants[tenant].duration = 2.0
    waits = [pacer.wait(tenant, 2.0) for _ in range(4)]
    for n, wait in enumerate(waits, start=1):
        assert 0.5 * n <= wait <= 0.55 * n


def test_a_black_hole_is_known_from_its_oldest_post_before_any_finishes() -> None:
    """No POST has finished, the oldest has been held 10 s: a slot is not expected to free sooner than
    that, so the turns are 10 s / slots apart rather than the first guess's."""
    pacer, tenant = Pacer(slots=8), uuid4()
    pacer.began(tenant, 0.0)
    assert pacer.wait(tenant, 0.0) <= 1.1 * FIRST_GUESS / 8
    first = pacer.wait(tenant, 10.0)
    second = pacer.wait(tenant, 10.0)
    assert first == pytest.approx(10 / 8, rel=0.1)
    assert second == pytest.approx(2 * 10 / 8, rel=0.1)


def test_waits_are_capped_and_tenants_are_paced_apart() -> None:
    pacer, slow, other = Pacer(slots=1, longest=30.0), uuid4(), uuid4()
    pacer.began(slow, 0.0)
    # Its one slot held for 100 s: the next turns are 100 s, 200 s, ... away, each capped at 30 s.
    waits = [pacer.wait(slow, 100.0) for _ in range(3)]
    assert all(30.0 <= w <= 33.0 for w in waits)  # the longest wait, with its spread
    assert pacer.wait(other, 100.0) <= 1.1 * FIRST_GUESS  # another tenant's turns are its own


def test_an_idle_tenant_is_forgotten() -> None:
    pacer, tenant = Pacer(slots=2), uuid4()
    pacer.began(tenant, 0.0)
    pacer.wait(tenant, 0.0)
    pacer.finished(tenant, 0.0, 100.0)
    assert pacer.tracked() == 0
