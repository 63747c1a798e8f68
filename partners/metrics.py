"""Prometheus metrics: the instruments a process records into, and their text exposition.

One `Metrics` per process: the API app makes one, so does `partnerloop worker`. Under
`partnerloop serve --workers N` the CLI points every worker process at one fresh directory
(`PROMETHEUS_MULTIPROC_DIR`, prometheus_client's multiprocess mode, chosen when the library is
first imported): each process writes its samples to memory-mapped files there, and a scrape of
any worker reads all of them, so the numbers are the server's, not one worker's.

Labels are route templates, statuses and fixed vocabularies (exchange reasons, delivery
outcomes): never an id, a tenant or anything a caller typed, so cardinality stays bounded and no
tenant's data reaches the scraper.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector
from prometheus_client.samples import Sample

from partners.outbox_status import Depth

MULTIPROCESS_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"
# The classic text format every Prometheus version reads (our names need none of 1.0.0's escaping).
CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4
# Seconds; the exchange answers in single-digit milliseconds, uploads may take many seconds.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
ATTEMPT_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
UNMATCHED_ROUTE = "unmatched"


def multiprocess_dir() -> str | None:
    """The directory shared by the API's worker processes, when there are several."""
    return os.environ.get(MULTIPROCESS_DIR_ENV) or None


class Metrics:
    """The instruments of one process, in a registry of its own (no global state)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._request_children: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}
        self.http_requests = Counter(
            "partnerloop_http_requests",
            "HTTP requests answered, by method, route template and status",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.http_duration = Histogram(
            "partnerloop_http_request_duration_seconds",
            "Time to answer an HTTP request, by method, route template and status",
            ["method", "route", "status"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.exchange_decisions = Counter(
            "partnerloop_exchange_decisions",
            "Exchange decisions on candidate offers, by reason (shown, or why not)",
            ["reason"],
            registry=self.registry,
        )
        self.webhook_attempts = Counter(
            "partnerloop_webhook_attempts",
            "Webhook delivery attempts, by outcome: succeeded, retrying, failed (gave up), cancelled "
            "(endpoint disabled), superseded (lease ran out), not_recorded (database error)",
            ["outcome"],
            registry=self.registry,
        )
        self.webhook_attempt_duration = Histogram(
            "partnerloop_webhook_attempt_duration_seconds",
            "Duration of one webhook HTTP attempt",
            buckets=ATTEMPT_BUCKETS,
            registry=self.registry,
        )

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        """Count one answered request and its latency."""
        key = (method, route, status)
        children = self._request_children.get(key)
        if children is None:
            # `labels()` validates and locks on every call: done once per series, the hot path is a dict hit.
            labels = (method, route, str(status))
            children = self.http_requests.labels(*labels), self.http_duration.labels(*labels)
            self._request_children[key] = children
        counter, histogram = children
        counter.inc()
        histogram.observe(seconds)

    def count_decisions(self, decisions: Mapping[str, int]) -> None:
        """Add one exchange answer's decisions, reason by reason."""
        for reason, count in decisions.items():
            if count:
                self.exchange_decisions.labels(reason).inc(count)

    def count_attempt(self, outcome: str, seconds: float) -> None:
        """Count one webhook attempt by what became of its delivery."""
        self.webhook_attempts.labels(outcome).inc()
        self.webhook_attempt_duration.observe(seconds)

    def exposition(self, extra: Iterable[Collector] = ()) -> bytes:
        """The text format for a scrape: this process's (or every worker's) samples, then `extra`."""
        registry = CollectorRegistry(auto_describe=False)
        path = multiprocess_dir()
        if path is not None:
            MultiProcessCollector(registry, path=path)  # type: ignore[no-untyped-call]
        else:
            registry.register(_Samples(self.registry))
        for collector in extra:
            registry.register(collector)
        return generate_latest(registry)


class _Samples(Collector):
    """Another registry's samples, so that one scrape can add collectors without keeping them."""

    def __init__(self, source: CollectorRegistry) -> None:
        self.source = source

    def collect(self) -> Iterator[GaugeMetricFamily]:
        yield from self.source.collect()  # type: ignore[misc]


class OutboxGauges(Collector):
    """The outbox backlog read at scrape time: the same in every process, so never summed."""

    def __init__(self, depth: Depth, now: datetime) -> None:
        self.depth, self.now = depth, now

    def collect(self) -> Iterator[GaugeMetricFamily]:
        d, now = self.depth, self.now
        yield _gauge("partnerloop_outbox_pending_events", "Outbox events not handed out yet", d.pending_events)
        yield _gauge(
            "partnerloop_outbox_oldest_pending_event_age_seconds",
            "How long the oldest pending outbox event has waited",
            d.oldest_pending_event_age(now),
        )
        yield _gauge("partnerloop_webhook_pending_deliveries", "Webhook deliveries not settled", d.pending_deliveries)
        yield _gauge("partnerloop_webhook_due_deliveries", "Pending deliveries due now", d.due_deliveries)
        yield _gauge(
            "partnerloop_webhook_oldest_due_delivery_age_seconds",
            "How long the longest-overdue delivery has been due",
            d.oldest_due_delivery_age(now),
        )
        yield _gauge("partnerloop_webhook_disabled_endpoints", "Webhook endpoints disabled", d.disabled_endpoints)


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=value)


def sample_value(text: str, name: str, labels: Mapping[str, str] | None = None) -> float:
    """One sample's value in an exposition (0 when absent): for tests and the soak's reconciliation."""
    wanted = dict(labels or {})
    total = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if _matches(sample, name, wanted):
                total += sample.value
    return total


def _matches(sample: Sample, name: str, labels: Mapping[str, str]) -> bool:
    return sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items())
