"""GET /metrics: Prometheus text format, plus what only the database knows (replay progress)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from aiohttp import web
from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from tracker.http.keys import AMQP, DATABASE
from tracker.metrics import POOL, exposition
from tracker.store import alerts, progress
from tracker.store.database import Database
from tracker.store.errors import Unavailable

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


async def get_metrics(request: web.Request) -> web.Response:
    database = request.app[DATABASE]
    observe_pool(database)
    consumer = request.app.get(AMQP)
    if consumer is not None:
        consumer.measure()  # the links' credit as of now, not as of the last settlement
    extra = CollectorRegistry()
    try:
        latest = await progress.latest(database)
    except Unavailable:
        latest = None  # metrics must answer during an outage too
    extra.register(_ReplayCollector(latest))
    with contextlib.suppress(Unavailable):  # as above
        extra.register(_AlertCollector(await alerts.counts(database)))
    return web.Response(body=exposition(extra), headers={"Content-Type": CONTENT_TYPE})


def observe_pool(database: Database) -> None:
    pool = database.pool
    size, idle = pool.get_size(), pool.get_idle_size()
    POOL.labels("in_use").set(size - idle)
    POOL.labels("idle").set(idle)
    POOL.labels("max").set(pool.get_max_size())


class _ReplayCollector(Collector):
    def __init__(self, latest: progress.Progress | None) -> None:
        self.latest = latest

    def collect(self) -> Iterator[GaugeMetricFamily]:
        p = self.latest
        running = p is not None and p.finished_at is None
        yield _gauge(
            "tracker_replay_running", "1 while a replay or check runs", 1 if running else 0
        )
        if p is None:
            return
        yield _gauge(
            "tracker_replay_events_done", "Events folded by the latest replay", p.events_done
        )
        yield _gauge(
            "tracker_replay_events_total",
            "Events the latest replay set out to fold",
            p.events_total,
        )
        yield _gauge(
            "tracker_replay_started_timestamp_seconds",
            "Start of the latest replay",
            p.started_at.timestamp(),
        )
        if p.finished_at is not None:
            seconds = (p.finished_at - p.started_at).total_seconds()
            yield _gauge(
                "tracker_replay_last_duration_seconds",
                "Duration of the latest finished replay",
                seconds,
            )
        if p.pause_ms is not None:
            yield _gauge(
                "tracker_replay_last_pause_seconds",
                "Ingestion pause of the latest swap",
                p.pause_ms / 1000,
            )
        if p.drift is not None:
            yield _gauge(
                "tracker_replay_last_check_drift", "Differences found by the latest check", p.drift
            )


class _AlertCollector(Collector):
    def __init__(self, counts: dict[str, int]) -> None:
        self.counts = counts

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "tracker_alerts",
            "Alerts (one per guard and rollout), by state: firing, resolved",
            labels=["state"],
        )
        for state in ("firing", "resolved"):
            family.add_metric([state], self.counts.get(state, 0))
        yield family


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=value)
