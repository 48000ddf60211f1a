"""The webhook worker's own defences, without servers: the endpoint breaker, and the directory opening
sealed secrets (a secret that does not open leaves the webhook out, never unsigned, never a crash)."""

import base64
import logging
import os
from uuid import uuid4

import pytest

from zaphub_contracts.webhooks import WebhookConfig, secret_aad, webhook_key
from zaphub_dispatcher.webhooks import Breaker, WebhookDirectory
from zaphub_runtime.keyring import KeyRing, single_key


def ring() -> KeyRing:
    return KeyRing([single_key(base64.b64encode(os.urandom(32)).decode())])


def test_breaker_opens_after_failures_in_a_row_then_lets_one_probe_through() -> None:
    """Closed until the threshold; open (a wait) for the cool-down; then one probe, others wait; a failed
    probe opens it again, a successful one closes it."""
    breaker = Breaker(threshold=3, cooldown=10.0)
    for _ in range(2):
        breaker.record(ok=False, now=0.0)
    assert breaker.wait(0.0) == 0.0
    breaker.record(ok=False, now=0.0)
    assert breaker.wait(5.0) == pytest.approx(5.0)
    assert breaker.wait(10.0) == 0.0  # the probe
    assert breaker.wait(10.0) > 0  # the rest wait for it
    breaker.record(ok=False, now=10.0)
    assert breaker.wait(15.0) == pytest.approx(5.0)
    assert breaker.wait(20.0) == 0.0
    breaker.record(ok=True, now=20.0)
    assert breaker.wait(20.0) == 0.0 and breaker.wait(20.0) == 0.0


def test_while_the_probe_runs_the_others_wait_as_long_as_it_may_take() -> None:
    """Asked again every second, thousands of deliveries behind one probe were thousands of looks a
    second; they wait for the probe's deadline instead. Asking (`probe=False`) never takes the turn."""
    breaker = Breaker(threshold=1, cooldown=5.0, probe_timeout=10.0)
    breaker.record(ok=False, now=0.0)
    assert breaker.wait(5.0, probe=False) == 0.0 and not breaker.probing
    assert breaker.wait(5.0) == 0.0 and breaker.probing
    assert breaker.wait(6.0) == pytest.approx(9.0)
    assert breaker.wait(14.5) == pytest.approx(1.0)  # at least a second, however close the deadline


def test_directory_opens_sealed_secrets_keeps_plain_ones_and_skips_what_does_not_open(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A sealed secret is opened once; an older API's plain secret is kept; a secret sealed under another
    key, or for another webhook, leaves that webhook out with a logged reason."""
    keys = ring()
    directory = WebhookDirectory(keys)
    tenant = uuid4()

    def config(sealed: str | None = None, secret: str = "") -> WebhookConfig:
        return WebhookConfig(
            id=uuid4(),
            tenant_id=tenant,
            url="https://1.1.1.1/",
            events=("*",),
            secret=secret,
            sealed_secret=sealed,
        )

    sealed = config()
    sealed = sealed.model_copy(
        update={"sealed_secret": keys.encrypt_text("whsec_sealed_0000000", secret_aad(tenant, sealed.id))}
    )
    plain = config(secret="whsec_plain_00000000")
    foreign = config(sealed=ring().encrypt_text("whsec_foreign_000000", b"x"))
    moved = config(sealed=keys.encrypt_text("whsec_moved_00000000", secret_aad(tenant, uuid4())))
    with caplog.at_level(logging.WARNING):
        for c in (sealed, plain, foreign, moved):
            directory._apply(webhook_key(tenant, c.id), c)
    opened = directory.get(tenant, sealed.id)
    assert opened is not None and opened.secret == "whsec_sealed_0000000"
    kept = directory.get(tenant, plain.id)
    assert kept is not None and kept.secret == "whsec_plain_00000000"
    assert directory.get(tenant, foreign.id) is None and directory.get(tenant, moved.id) is None
    assert sum("webhook skipped" in m for m in caplog.messages) == 2
