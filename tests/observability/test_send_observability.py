"""One send through the real four-service stack, watched the way operators watch it: the trace its
spans export over OTLP, and the Prometheus metrics each worker serves on its own port; and one
inbound message's trace, from the host through the projector to the webhook POST."""

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from e2e.client import Tenant, eventually, new_tenant
from e2e.receiver import Received, Receiver
from observability.otlp_receiver import OtlpReceiver, ReceivedSpan

from zaphub_devstack.ports import free_port
from zaphub_devstack.services import console_script
from zaphub_devstack.testing import Stack

WORKERS = ("dispatcher", "ratelimiter", "session-host")


@dataclass
class Observed:
    stack: Stack
    receiver: OtlpReceiver
    metrics_ports: dict[str, int]
    tenant_id: str
    api_key: str
    session: dict[str, Any]
    message: dict[str, Any]


@pytest.fixture(scope="module")
async def observed(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Observed]:
    """A stack exporting traces to an in-test OTLP receiver, each worker serving /metrics on a free port,
    with one session connected and one text sent."""
    data_dir: Path = tmp_path_factory.mktemp("observed-stack")
    ports = {name: free_port() for name in WORKERS}
    # `env VAR=...` gives each worker its own port: the supervisor passes one environment to all.
    services = {"api": [console_script("zaphub-api")]} | {
        f"{name}-1": ["env", f"ZAPHUB_METRICS_PORT={port}", console_script(f"zaphub-{name}")]
        for name, port in ports.items()
    }
    with OtlpReceiver() as receiver:
        env = {
            "ZAPHUB_TRANSPORT": "sim",
            "ZAPHUB_SIM_PAIR_DELAY": "0.5",
            "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
            "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
            "OTEL_BSP_SCHEDULE_DELAY": "200",
            "ZAPHUB_EGRESS_ALLOW": "127.0.0.1",  # the inbound trace's webhook receiver
        }
        async with Stack(data_dir, env=env, services=services) as stack:
            async with httpx.AsyncClient(base_url=stack.api_url, timeout=10) as http:
                tenant: Tenant = await new_tenant(http, stack.admin_key)
                session = await tenant.connected_session(timeout=60)
                accepted = await tenant.send_text(session["id"], "+5511988887777", "traced")
                message = await tenant.wait_status(accepted["id"], {"sent", "delivered", "read"}, timeout=60)
            api_key = tenant.headers["Authorization"].removeprefix("Bearer ")
            yield Observed(stack, receiver, ports, tenant.id, api_key, session, message)


def _trace_of_send(spans: list[ReceivedSpan], message_id: str) -> list[ReceivedSpan] | None:
    """Every span of the trace the dispatcher processed the message in, once the projector's span
    for its message.sent has arrived too."""
    processing = [
        s for s in spans if s.service == "dispatcher" and s.attributes.get("zaphub.message_id") == message_id
    ]
    if not processing:
        return None
    trace_id = processing[0].trace_id
    in_trace = [s for s in spans if s.trace_id == trace_id]
    if not any(s.name.endswith("message.sent") and s.service == "api" for s in in_trace):
        return None
    return in_trace


async def test_one_send_is_one_trace_across_all_four_services(observed: Observed) -> None:
    """The HTTP request, the dispatcher's processing, the rate-limit call, the host's send and the
    projection of message.sent all land in one trace, which spans api, dispatcher, ratelimiter and
    session-host."""
    spans = await _checked_trace(observed, observed.message["id"])
    assert "ratelimiter" in {s.service for s in spans}


async def _checked_trace(observed: Observed, message_id: str) -> list[ReceivedSpan]:
    """The spans of one send's trace, checked to hold every step, each the child of the step before."""

    async def trace() -> list[ReceivedSpan] | None:
        return _trace_of_send(observed.receiver.snapshot(), message_id)

    spans = await eventually(trace, 60, "the spans of the send to be exported")
    by_service = {s.service for s in spans}
    assert {"api", "dispatcher", "session-host"} <= by_service, by_service

    def one(service: str, kind: str, pattern: str) -> ReceivedSpan:
        found = [
            s
            for s in spans
            if s.service == service
            and s.kind == kind
            and re.search(pattern, s.name)
            and s.attributes.get("zaphub.message_id", message_id) == message_id
        ]
        assert found, (
            f"no {kind} span of {service} like {pattern!r} in {[(s.service, s.name) for s in spans]}"
        )
        return found[0]

    http_span = one("api", "server", r"^POST .*/messages")
    process = one("dispatcher", "consumer", r"^process zaphub\.v1\.cmd\.message\.send")
    acquire = one("dispatcher", "client", r"^ratelimit acquire$")
    host_call = one("dispatcher", "client", r"^session-host send$")
    host_send = one("session-host", "server", r"^send process$")
    projected = one("api", "consumer", r"^process zaphub\.v1\.evt\..*message\.sent$")
    assert projected.attributes.get("zaphub.consumer") == "projector"
    if "ratelimiter" in by_service:
        one("ratelimiter", "consumer", r"ratelimit\.acquire process$")

    ids = {s.span_id for s in spans}
    assert http_span.parent_id == "" or http_span.parent_id not in ids  # the root of the send
    assert process.parent_id in ids  # continued from the API's publish, not a new trace
    assert acquire.parent_id == process.span_id
    assert host_call.parent_id == process.span_id
    assert host_send.parent_id == host_call.span_id
    # No span about this message sits in another trace.
    others = [
        s
        for s in observed.receiver.snapshot()
        if s.attributes.get("zaphub.message_id") == message_id and s.trace_id != process.trace_id
    ]
    assert others == []
    return spans


def _samples(text: str) -> dict[str, float]:
    """`name{labels}` -> value of a Prometheus text exposition (labels as printed)."""
    samples = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.rpartition(" ")
            samples[key] = float(value)
    return samples


def _value(samples: dict[str, float], name: str, **labels: str) -> float:
    """Sum of the samples of `name` whose labels include `labels`."""
    total = 0.0
    for key, value in samples.items():
        metric, _, rest = key.partition("{")
        if metric == name and all(f'{k}="{v}"' in rest for k, v in labels.items()):
            total += value
    return total


async def test_workers_serve_metrics_of_the_send(observed: Observed) -> None:
    """After one send, each worker's /metrics shows it: the dispatcher's sent outcome and latency and
    the consumer backlog, the host's connected session, capacity and hand-over, the ratelimiter's grant."""
    async with httpx.AsyncClient(timeout=10) as http:

        async def scrape(worker: str) -> dict[str, float]:
            response = await http.get(f"http://127.0.0.1:{observed.metrics_ports[worker]}/metrics")
            assert response.status_code == 200
            return _samples(response.text)

        async def dispatcher_ready() -> dict[str, float] | None:
            samples = await scrape("dispatcher")
            lag = 'zaphub_jetstream_consumer_pending_messages{consumer="dispatcher-send",stream="ZAPHUB_CMD"}'
            return samples if lag in samples else None

        dispatcher = await eventually(dispatcher_ready, 30, "the dispatcher to report consumer lag")
        host = await scrape("session-host")
        ratelimiter = await scrape("ratelimiter")

    assert _value(dispatcher, "zaphub_dispatcher_send_commands_total", outcome="sent") >= 1
    assert _value(dispatcher, "zaphub_dispatcher_send_latency_seconds_count") >= 1
    assert _value(dispatcher, "zaphub_dispatcher_host_round_trip_seconds_count", status="ok") >= 1
    assert (
        _value(
            dispatcher, "zaphub_dispatcher_tenant_messages_total", tenant=observed.tenant_id, outcome="sent"
        )
        == 1
    )
    host_id = observed.session["host"]
    assert _value(host, "zaphub_session_host_sessions", host=host_id, status="connected") == 1
    assert _value(host, "zaphub_session_host_held_sessions", host=host_id) == 1
    capacity = _value(host, "zaphub_session_host_capacity_sessions", host=host_id)
    assert capacity > 0
    assert _value(host, "zaphub_session_host_capacity_usage_ratio", host=host_id) == pytest.approx(
        1 / capacity
    )
    assert _value(host, "zaphub_session_host_sends_total", host=host_id, result="sent") == 1
    assert _value(host, "zaphub_session_host_auth_saves_total", host=host_id) >= 1
    assert _value(ratelimiter, "zaphub_ratelimit_decisions_total", outcome="granted") >= 1


async def test_each_send_of_a_run_is_a_trace_of_its_own(observed: Observed) -> None:
    """Messages that wait together go to the ratelimiter and the host in one request each, and each
    still has its whole trace: its own processing, rate-limit and host calls, host span and projection.

    Last in the module: the metrics test before it counts the fixture's one send exactly."""
    async with httpx.AsyncClient(base_url=observed.stack.api_url, timeout=10) as http:
        tenant = Tenant(http, {"id": observed.tenant_id, "api_key": observed.api_key})
        with observed.stack.frozen("dispatcher-1"):
            session_id = observed.session["id"]
            ids = [(await tenant.send_text(session_id, "+5511988887777", f"run {i}"))["id"] for i in range(3)]
        for message_id in ids:
            await tenant.wait_status(message_id, {"sent", "delivered", "read"}, timeout=60)
    traces = {(await _checked_trace(observed, message_id))[0].trace_id for message_id in ids}
    assert len(traces) == len(ids)


async def test_an_inbound_message_is_one_trace_from_the_host_to_the_webhook_post(observed: Observed) -> None:
    """A simulated customer's message starts a trace at the host (`receive message`) that the projector's
    store and the webhook fan-out continue, and the delivery's POST closes: one trace an SRE reads as
    received -> stored -> webhook POSTed; the receiver gets its traceparent."""
    async with httpx.AsyncClient(base_url=observed.stack.api_url, timeout=10) as http, Receiver() as receiver:
        headers = {"Authorization": f"Bearer {observed.api_key}"}
        hook = await http.post(
            "/api/v1/webhooks", json={"url": receiver.url, "events": ["message.received"]}, headers=headers
        )
        assert hook.status_code == 201, hook.text
        body = {
            "action": "message",
            "from": "+5521987650003",
            "content": {"type": "text", "text": "traced in"},
        }
        sim = await http.post(
            f"/api/v1/sessions/{observed.session['id']}/simulate", json=body, headers=headers
        )
        assert sim.status_code == 202, sim.text

        def posted(requests: list[Received]) -> list[Received]:
            return [r for r in requests if r.event["data"].get("whatsapp_id") == sim.json()["whatsapp_id"]]

        (post,) = await receiver.wait_for(posted, 60, "the webhook POST of the inbound message")
    message_id = post.event["data"]["message_id"]

    def find(spans: list[ReceivedSpan], service: str, kind: str, pattern: str) -> ReceivedSpan | None:
        found = [s for s in spans if s.service == service and s.kind == kind and re.search(pattern, s.name)]
        return found[0] if found else None

    async def trace() -> list[ReceivedSpan] | None:
        spans = observed.receiver.snapshot()
        host = [
            s
            for s in spans
            if s.name == "receive message" and s.attributes.get("zaphub.message_id") == message_id
        ]
        if not host:
            return None
        in_trace = [s for s in spans if s.trace_id == host[0].trace_id]
        # Each service exports on its own schedule: wait for the projector's span as well.
        stored = find(in_trace, "api", "consumer", r"^process zaphub\.v1\.evt\..*message\.received$")
        return in_trace if stored and find(in_trace, "dispatcher", "client", r"^webhook POST$") else None

    spans = await eventually(trace, 60, "the spans of the inbound message to be exported")
    host = find(spans, "session-host", "producer", r"^receive message$")
    stored = find(spans, "api", "consumer", r"^process zaphub\.v1\.evt\..*message\.received$")
    fan_out = [
        s for s in spans if s.service == "dispatcher" and s.attributes.get("zaphub.consumer") == "webhooks"
    ]
    delivery = [
        s
        for s in spans
        if s.service == "dispatcher" and s.attributes.get("zaphub.consumer") == "webhook-deliveries"
    ]
    post_span = find(spans, "dispatcher", "client", r"^webhook POST$")
    assert host and stored and fan_out and delivery and post_span, [(s.service, s.name) for s in spans]
    assert stored.parent_id == host.span_id and stored.attributes.get("zaphub.consumer") == "projector"
    assert fan_out[0].parent_id == host.span_id
    assert delivery[0].parent_id in {s.span_id for s in spans}
    assert post_span.parent_id == delivery[0].span_id
    assert post.headers["traceparent"].split("-")[1] == host.trace_id
