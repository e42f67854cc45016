"""
What a server process is doing, in numbers and in log lines: Prometheus metrics
(``prometheus-client``), an opt-in ``/metrics`` view, a JSON snapshot of the same
numbers, and one structured log line for each refusal and each resync.

The metrics live in their own registry, ``paintbrush.metrics.registry``, not in
prometheus-client's global one: a project serves them with ``metrics_view`` (or adds
them to its own exposition with ``prometheus_client.REGISTRY.register(registry)``).

    # urls.py: opt in
    from paintbrush.metrics import metrics_view
    urlpatterns += [path("metrics", metrics_view)]

Nothing here runs per socket per event: counters move once per message, per batch of
messages, or per socket's life; the hubs' backlog is read when scraped.

Every server process counts its own. With several worker processes on one port
(``uvicorn --workers``), a scrape reaches one of them: set ``PROMETHEUS_MULTIPROC_DIR``
(before the processes start) and the views sum counters, histograms and the socket and
subscription gauges over the live workers; the backlog is the answering process's.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import os
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from django.http import HttpRequest, HttpResponse, HttpResponseForbidden, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector

from .frames import REASON_CODES
from .hub import all_hubs
from .hub import observers as _hub_observers
from .settings import pb_settings

logger = logging.getLogger("paintbrush")

__all__ = [
    "allowed",
    "log",
    "metrics_json_view",
    "metrics_view",
    "refused",
    "registry",
    "resynced",
    "snapshot",
]

#: Paintbrush's metrics (and nothing else).
registry = CollectorRegistry()

#: 1 ms to 10 s: a local fan-out takes microseconds per socket; seconds mean trouble.
_SECONDS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

SOCKETS = Gauge(
    "paintbrush_sockets",
    "Open WebSocket connections (/ws and /ws/doc) admitted by this process.",
    registry=registry,
    multiprocess_mode="livesum",
)
SUBSCRIPTIONS = Gauge(
    "paintbrush_subscriptions",
    "Open resource subscriptions (opendoc) on this process's sockets, by resource.",
    ["resource"],
    registry=registry,
    multiprocess_mode="livesum",
)
PUBLISHED = Counter(
    "paintbrush_events_published",
    "Messages this process handed to the channel layer after a commit: one per group an event, "
    "notice or lost-marker goes to.",
    registry=registry,
)
PUBLISH_FAILURES = Counter(
    "paintbrush_publish_failures",
    "Messages the channel layer refused (their groups are sent a lost-marker later, and resync).",
    registry=registry,
)
DELIVERIES = Counter(
    "paintbrush_deliveries",
    "Messages handed to local members by this process's hubs: each message counts its local members.",
    registry=registry,
)
LAG = Histogram(
    "paintbrush_fanout_lag_seconds",
    "Seconds from a hub receiving a message to the end of its local fan-out, per message.",
    registry=registry,
    buckets=_SECONDS,
)
RESYNCS = Counter(
    "paintbrush_resyncs",
    "resync frames sent to clients, by reason (layer_down, message_lost, slow_socket, rate_limited, other).",
    ["reason"],
    registry=registry,
)
DROPPED = Counter(
    "paintbrush_dropped_frames",
    "Events dropped from the outbox of a socket that fell behind (a resync replaces them).",
    registry=registry,
)
SHED = Counter(
    "paintbrush_shed_messages",
    "Messages a hub dropped past HUB_MAX_BACKLOG (their subscriptions resync).",
    registry=registry,
)
REFUSALS = Counter(
    "paintbrush_refusals",
    "Handshakes refused, requests refused and sockets closed for their client's behaviour, by reason.",
    ["reason"],
    registry=registry,
)
ASSEMBLIES = Counter(
    "paintbrush_document_assemblies",
    "Role document parts assembled by this process, by role (one per part and change).",
    ["role"],
    registry=registry,
)
DOCUMENT_QUERIES = Counter(
    "paintbrush_document_queries",
    "Database queries made assembling role documents' parts, by role.",
    ["role"],
    registry=registry,
)
ASSEMBLY_SECONDS = Histogram(
    "paintbrush_document_assembly_seconds",
    "Seconds to assemble one part of a role document (its database reads included).",
    registry=registry,
    buckets=_SECONDS,
)


class _LiveCollector(Collector):
    """Numbers read from the live hubs at scrape time, never kept up to date."""

    def collect(self) -> Iterable[Metric]:
        backlog = sum(hub.backlog for hub in all_hubs())
        yield GaugeMetricFamily(
            "paintbrush_hub_backlog",
            "Deliveries received by this process's hubs and not yet made.",
            value=backlog,
        )


_live = _LiveCollector()
registry.register(_live)


# -- what the rest of Paintbrush calls ------------------------------------------------------------


def published(sent: int, failed: int) -> None:
    """A batch of channel-layer messages went out (``paintbrush.broadcast``)."""
    if sent:
        PUBLISHED.inc(sent)
    if failed:
        PUBLISH_FAILURES.inc(failed)


def fanned_out(received: float | None, deliveries: int) -> None:
    """A hub fanned one message out to ``deliveries`` local members; ``received`` is
    the ``time.monotonic()`` at which it arrived (None when unknown)."""
    if received is not None:
        LAG.observe(time.monotonic() - received)
    DELIVERIES.inc(deliveries)


def shed(messages: int) -> None:
    if messages:
        SHED.inc(messages)


class _HubMetrics:
    """The process hubs' observer (``paintbrush.hub.observers``)."""

    fanned_out = staticmethod(fanned_out)
    shed = staticmethod(shed)


def observe() -> None:
    """Watch the process hubs (``AppConfig.ready``): metrics observe the hub, the hub
    does not import them. Idempotent."""
    if not any(isinstance(observer, _HubMetrics) for observer in _hub_observers):
        _hub_observers.append(_HubMetrics())


def dropped(frames: int) -> None:
    if frames:
        DROPPED.inc(frames)


@contextmanager
def assembling(role: str) -> Iterator[None]:
    """Count and time one role document's assembly."""
    started = time.perf_counter()
    try:
        yield
    finally:
        ASSEMBLIES.labels(role).inc()
        ASSEMBLY_SECONDS.observe(time.perf_counter() - started)


def _reason_code(reason: str) -> str:
    return REASON_CODES.get(reason, "other")


def resynced(resource: str, reason: str, client: str) -> None:
    """A socket's subscription to ``resource`` was sent ``resync``."""
    code = _reason_code(reason)
    RESYNCS.labels(code).inc()
    log("resync", resource=resource, reason=reason, code=code, client=client)


def refused(reason: str, client: str, **fields: Any) -> None:
    """A client was refused something (``reason``: ``access``, ``too_many_sockets``,
    ``forbidden``, ``limit_exceeded``, ``rate_limited``, ``too_large``, ``flood``,
    ``slow_socket``)."""
    REFUSALS.labels(reason).inc()
    log("refused", reason=reason, client=client, **fields)


# -- structured log lines ------------------------------------------------------------------------

#: LogRecord's own attributes: a field of that name goes to ``extra`` with a ``_`` added.
_RESERVED = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


def _token(value: Any) -> str:
    text = value if isinstance(value, str) else str(value)
    if text and not any(c.isspace() or c in '"=\\' for c in text):
        return text
    return json.dumps(text, ensure_ascii=False)


def log(event: str, **fields: Any) -> None:
    """One INFO line on logger ``paintbrush``: ``paintbrush.<event> key=value ...``
    (values with spaces quoted), the fields also in the record (``extra``) for JSON
    formatters, with ``event`` = ``"paintbrush.<event>"``."""
    if not logger.isEnabledFor(logging.INFO):
        return
    extra = {f"{key}_" if key in _RESERVED else key: value for key, value in fields.items()}
    extra["event"] = f"paintbrush.{event}"
    text = " ".join(f"{key}={_token(value)}" for key, value in fields.items())
    logger.info("paintbrush.%s %s", event, text, extra=extra)


# -- reading the numbers -------------------------------------------------------------------------


def _scrape_registry() -> CollectorRegistry:
    """What a scrape reads: this process's registry, or with ``PROMETHEUS_MULTIPROC_DIR``
    every worker's files summed (plus this process's scrape-time numbers)."""
    path = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not path:
        return registry
    from prometheus_client import multiprocess

    combined = CollectorRegistry()
    multiprocess.MultiProcessCollector(combined, path=path)  # type: ignore[no-untyped-call]
    combined.register(_live)
    return combined


def quantile(q: float, buckets: list[tuple[float, float]], count: float) -> float | None:
    """The ``q`` quantile estimated from cumulative histogram ``buckets`` (finite upper
    bounds, ascending) of ``count`` observations, interpolating linearly inside a bucket
    as Prometheus's ``histogram_quantile`` does; None without observations."""
    if count <= 0:
        return None
    rank = q * count
    lower, below = 0.0, 0.0
    for bound, cumulative in buckets:
        if cumulative >= rank:
            if cumulative == below:
                return bound
            return lower + (bound - lower) * (rank - below) / (cumulative - below)
        lower, below = bound, cumulative
    return lower  # in the +Inf bucket: the highest finite bound


def snapshot(source: CollectorRegistry | None = None) -> dict[str, Any]:
    """The numbers of the JSON view, from ``source`` (default: what a scrape reads)."""
    values: dict[str, float] = {}
    labelled: dict[str, dict[str, float]] = {}
    buckets: list[tuple[float, float]] = []
    for family in (source or _scrape_registry()).collect():
        for sample in family.samples:
            if sample.name == "paintbrush_fanout_lag_seconds_bucket":
                bound = float(sample.labels["le"])
                if bound != float("inf"):
                    buckets.append((bound, sample.value))
            elif sample.labels:
                label = next((v for k, v in sample.labels.items() if k != "pid"), "")
                into = labelled.setdefault(sample.name, {})
                into[label] = into.get(label, 0) + sample.value
            else:
                values[sample.name] = values.get(sample.name, 0) + sample.value
    buckets.sort()

    def number(name: str) -> int:
        return round(values.get(name, 0))

    def by_label(name: str) -> dict[str, int]:
        return {label: round(value) for label, value in sorted(labelled.get(name, {}).items())}

    count = values.get("paintbrush_fanout_lag_seconds_count", 0)
    return {
        "sockets": number("paintbrush_sockets"),
        "subscriptions": {k: v for k, v in by_label("paintbrush_subscriptions").items() if v},
        "events_published": number("paintbrush_events_published_total"),
        "publish_failures": number("paintbrush_publish_failures_total"),
        "deliveries": number("paintbrush_deliveries_total"),
        "backlog": number("paintbrush_hub_backlog"),
        "resyncs": by_label("paintbrush_resyncs_total"),
        "dropped": {
            "frames": number("paintbrush_dropped_frames_total"),
            "shed": number("paintbrush_shed_messages_total"),
        },
        "refusals": by_label("paintbrush_refusals_total"),
        "documents": {
            "assemblies": by_label("paintbrush_document_assemblies_total"),
            "queries": by_label("paintbrush_document_queries_total"),
            "seconds": values.get("paintbrush_document_assembly_seconds_sum", 0.0),
        },
        "lag": {
            "count": round(count),
            "sum": values.get("paintbrush_fanout_lag_seconds_sum", 0.0),
            "p50": quantile(0.5, buckets, count),
            "p99": quantile(0.99, buckets, count),
            # Cumulative, finite bounds only (JSON has no infinity): +Inf is "count".
            "buckets": [[bound, round(n)] for bound, n in buckets],
        },
    }


# -- the views -------------------------------------------------------------------------------------


def allowed(request: HttpRequest) -> bool:
    """Staff, or a client address in ``PAINTBRUSH["METRICS_ALLOWED_ADDRESSES"]``
    (addresses or networks). Behind a proxy, the address is the one the server reports:
    have it trust the proxy's forwarded-for header."""
    user = getattr(request, "user", None)
    if user is not None and getattr(user, "is_active", False) and getattr(user, "is_staff", False):
        return True
    try:
        address = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    for entry in pb_settings.METRICS_ALLOWED_ADDRESSES:
        try:
            if address in ipaddress.ip_network(entry, strict=False):
                return True
        except (TypeError, ValueError):
            continue  # reported by check paintbrush.E005
    return False


@never_cache
@require_safe
def metrics_view(request: HttpRequest) -> HttpResponse:
    """Prometheus's text exposition (OpenMetrics if the scraper asks for it)."""
    if not allowed(request):
        return HttpResponseForbidden("Metrics are for staff and the addresses in METRICS_ALLOWED_ADDRESSES.")
    encoder, content_type = choose_encoder(request.headers.get("Accept", ""))
    return HttpResponse(encoder(_scrape_registry()), content_type=content_type)


@never_cache
@require_safe
def metrics_json_view(request: HttpRequest) -> HttpResponse:
    """``snapshot()`` as JSON, for a page that plots it (the demo's ``/ops/``)."""
    if not allowed(request):
        return JsonResponse({"detail": "Metrics are for staff and METRICS_ALLOWED_ADDRESSES."}, status=403)
    return JsonResponse(snapshot())
