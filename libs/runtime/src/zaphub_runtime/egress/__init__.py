"""One egress policy for every outbound HTTP request a tenant can cause (media by URL, webhooks, link
previews): `EgressPolicy` says which URLs may be reached, `EgressClient` makes policy-checked,
address-pinned, deadline- and size-bounded requests. See docs/security.md, "Egress policy"."""

from zaphub_runtime.egress.addresses import IPAddress, is_public
from zaphub_runtime.egress.client import EgressClient, EgressResponse
from zaphub_runtime.egress.errors import (
    EgressError,
    EgressFailed,
    EgressRefused,
    EgressTimeout,
    EgressTooLarge,
)
from zaphub_runtime.egress.policy import EgressPolicy, EgressTarget
from zaphub_runtime.egress.resolution import Resolver, system_resolver

__all__ = [
    "EgressClient",
    "EgressError",
    "EgressFailed",
    "EgressPolicy",
    "EgressRefused",
    "EgressResponse",
    "EgressTarget",
    "EgressTimeout",
    "EgressTooLarge",
    "IPAddress",
    "Resolver",
    "is_public",
    "system_resolver",
]
