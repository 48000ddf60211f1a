"""Choosing the ratelimiter replica of a tenant: agreement between clients, discovery, forgetting."""

import uuid

from zaphub_contracts import subjects
from zaphub_runtime.ratelimit_routes import RatelimiterRoutes

HEADER = subjects.RATELIMIT_REPLICA_HEADER


def learned(*replicas: str) -> RatelimiterRoutes:
    routes = RatelimiterRoutes(discover_every=3600)
    for replica in replicas:
        routes.heard({HEADER: replica})
    return routes


def test_before_any_replica_answered_requests_go_to_the_queue_group() -> None:
    """With no replica known yet, a client asks the queue group."""
    routes = RatelimiterRoutes()
    assert routes.subject(uuid.uuid4(), "acquire") == subjects.RATELIMIT_ACQUIRE


def test_clients_that_know_the_same_replicas_pick_the_same_one() -> None:
    """Two clients that heard of the replicas in different orders agree on every tenant's replica."""
    one, other = learned("rl-1", "rl-2", "rl-3"), learned("rl-3", "rl-1", "rl-2")
    tenants = [uuid.uuid4() for _ in range(200)]
    assert [one.owner(t) for t in tenants] == [other.owner(t) for t in tenants]
    # ... and the tenants spread over all of them.
    assert {one.owner(t) for t in tenants} == {"rl-1", "rl-2", "rl-3"}
    tenant = tenants[0]
    assert one.subject(tenant, "release") == subjects.ratelimit_replica(one.owner(tenant), "release")


def test_a_new_replica_takes_over_only_its_share() -> None:
    """Adding a replica moves only the tenants it now wins; the others stay where their window is."""
    before, after = learned("rl-1", "rl-2"), learned("rl-1", "rl-2", "rl-3")
    tenants = [uuid.uuid4() for _ in range(300)]
    moved = [t for t in tenants if before.owner(t) != after.owner(t)]
    assert all(after.owner(t) == "rl-3" for t in moved)
    assert 0 < len(moved) < len(tenants)


def test_a_replica_that_did_not_answer_is_forgotten() -> None:
    """A direct subject without responders drops its replica; the queue subject drops nothing."""
    routes = learned("rl-1", "rl-2")
    assert routes.lost(subjects.ratelimit_replica("rl-1", "acquire"))
    assert routes.replicas == ["rl-2"]
    assert not routes.lost(subjects.RATELIMIT_ACQUIRE)


def test_requests_go_to_the_queue_group_now_and_then_to_discover_replicas() -> None:
    """Every `discover_every` seconds one request goes to the queue group, where new replicas answer."""
    routes = RatelimiterRoutes(discover_every=0.0)
    routes.heard({HEADER: "rl-1"})
    assert routes.subject(uuid.uuid4(), "usage") == subjects.RATELIMIT_USAGE
