"""OpenTelemetry setup from the standard OTEL_* variables, and W3C trace context in NATS headers."""

import os
from collections.abc import Mapping
from contextlib import AbstractContextManager

from opentelemetry import context, propagate, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ParentBased

__all__ = [
    "consumer_span",
    "extract_context",
    "inject_headers",
    "setup_tracing",
    "start_client_span",
    "start_consumer_span",
    "traces_exported",
]


def _console() -> bool:
    return os.environ.get("OTEL_TRACES_EXPORTER", "").lower() == "console"


def traces_exported() -> bool:
    """Whether the OTEL_* variables name somewhere to send spans (an OTLP endpoint, or the console)."""
    return _console() or bool(
        os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    )


def _exporter() -> SpanExporter | None:
    if not traces_exported():
        return None
    if _console():
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        return ConsoleSpanExporter()
    protocol = os.environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or os.environ.get(
        "OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"
    )
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as Grpc

        return Grpc()
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as Http

    return Http()


def setup_tracing(default_service_name: str) -> TracerProvider:
    """Install a tracer provider named after the service (OTEL_SERVICE_NAME wins when set).

    With nowhere to export, spans are not sampled (unless OTEL_TRACES_SAMPLER says otherwise): trace
    ids still reach the logs and the NATS headers, but no span is recorded, which halves their cost on
    the hot paths.
    """
    name = os.environ.get("OTEL_SERVICE_NAME", default_service_name)
    exporter = _exporter()
    quiet = exporter is None and not os.environ.get("OTEL_TRACES_SAMPLER")
    provider = TracerProvider(
        resource=Resource.create({"service.name": name}), sampler=ParentBased(ALWAYS_OFF) if quiet else None
    )
    if exporter is not None:
        provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    return provider


def inject_headers(headers: dict[str, str] | None = None, span: trace.Span | None = None) -> dict[str, str]:
    """Headers carrying the W3C trace context (traceparent, tracestate) of `span`, or of the current one."""
    carrier = dict(headers or {})
    propagate.inject(carrier, context=None if span is None else trace.set_span_in_context(span))
    return carrier


def extract_context(headers: Mapping[str, str] | None) -> context.Context:
    return propagate.extract(dict(headers or {}))


def consumer_span(
    tracer: trace.Tracer, subject: str, headers: Mapping[str, str] | None, attributes: Mapping[str, str | int]
) -> AbstractContextManager[trace.Span]:
    """A span for processing one NATS message, child of the trace its headers carry.

    Named and attributed after the OpenTelemetry messaging conventions; ZapHub ids go in `zaphub.*`.
    """
    return trace.use_span(start_consumer_span(tracer, subject, headers, attributes), end_on_exit=True)


def start_consumer_span(
    tracer: trace.Tracer, subject: str, headers: Mapping[str, str] | None, attributes: Mapping[str, str | int]
) -> trace.Span:
    """`consumer_span`'s span, started without becoming current: for messages processed together, each
    in its own trace. The caller ends it."""
    return tracer.start_span(
        f"process {_subject_pattern(subject)}",
        context=extract_context(headers),
        kind=trace.SpanKind.CONSUMER,
        attributes={
            "messaging.system": "nats",
            "messaging.operation.type": "process",
            "messaging.destination.name": subject,
            **attributes,
        },
    )


def start_client_span(tracer: trace.Tracer, name: str, parent: trace.Span) -> trace.Span:
    """A CLIENT child span of `parent`, started without becoming current; or, when `parent` is not
    recorded, `parent` itself: nobody would see the child, and the request it wraps carries the same
    trace either way. The caller ends it (ending an unrecorded parent is a no-op)."""
    if not parent.is_recording():
        return parent
    return tracer.start_span(name, context=trace.set_span_in_context(parent), kind=trace.SpanKind.CLIENT)


def _subject_pattern(subject: str) -> str:
    """Low-cardinality span name: the subject without its tenant and session ids."""
    return ".".join(
        "*" if len(token) == 36 and token.count("-") == 4 else token for token in subject.split(".")
    )
