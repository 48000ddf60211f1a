"""The ZapHub-Signature header: a known vector, tampering and staleness, and the docs' snippet."""

import re
from pathlib import Path
from typing import Any

from zaphub_dispatcher.webhook_signing import sign, verify

SECRET = "whsec_test_secret"
BODY = b'{"id":"evt_1"}'
T = 1700000000
HEADER = "t=1700000000,v1=248a374f50f943a28b0f6ab50faf9a7e7e29b710fa26df9fb1618b9bf8ea9c9a"
DOCS = Path(__file__).resolve().parents[3] / "docs" / "webhooks.md"


def _docs_verify() -> Any:
    """The `verify` function of the Python block in docs/webhooks.md."""
    block = re.search(r"```python\n(.*?)```", DOCS.read_text(), re.S)
    assert block is not None, "docs/webhooks.md has no python block"
    namespace: dict[str, Any] = {}
    exec(block.group(1), namespace)
    return namespace["verify"]


def test_signature_matches_the_known_vector() -> None:
    """Signing the documented body at the documented time gives the documented header."""
    assert sign(SECRET, BODY, T) == HEADER


def test_verify_accepts_the_vector_and_rejects_tampering_and_stale_signatures() -> None:
    """A valid header verifies; another body, secret or an old timestamp does not."""
    assert verify(SECRET, BODY, HEADER, now=T + 10)
    assert not verify(SECRET, b'{"id":"evt_2"}', HEADER, now=T)
    assert not verify("whsec_other", BODY, HEADER, now=T)
    assert not verify(SECRET, BODY, HEADER, now=T + 301)
    assert not verify(SECRET, BODY, "v1=abc", now=T)
    assert not verify(SECRET, BODY, "garbage", now=T)


def test_docs_snippet_verifies_exactly_like_the_dispatcher() -> None:
    """The verification code tenants copy from the docs accepts what ZapHub signs and nothing else."""
    docs_verify = _docs_verify()
    assert docs_verify(SECRET, BODY, HEADER, now=T)
    fresh = sign(SECRET, BODY)
    assert docs_verify(SECRET, BODY, fresh) and verify(SECRET, BODY, fresh)
    assert not docs_verify(SECRET, BODY + b" ", HEADER, now=T)
    assert not docs_verify(SECRET, BODY, HEADER, now=T + 3600)
    assert HEADER in DOCS.read_text()
