"""Prometheus metrics (the official client). Label values come from small fixed sets only.

With `serve --workers N`, the supervisor sets PROMETHEUS_MULTIPROC_DIR for its workers and the
client library aggregates their counters in files there; /metrics then reads them all.
"""

from __future__ import annotations

import os

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
    multiprocess,
)

disable_created_metrics()  # type: ignore[no-untyped-call]  # the *_created series add nothing for counters that start at boot

REGISTRY = CollectorRegistry(auto_describe=True)

RECEIVED = Counter(
    "tracker_notifications_received",
    "Deliveries that reached POST /v1/notifications with a valid token",
    registry=REGISTRY,
)
ACCEPTED = Counter(
    "tracker_notifications_accepted",
    "Deliveries committed to the log, by type (one of the platform types, or unrecognised)",
    ["type"],
    registry=REGISTRY,
)
REJECTED = Counter(
    "tracker_notifications_rejected",
    "Deliveries refused with a 4xx, by reason (the error code)",
    ["reason"],
    registry=REGISTRY,
)
FAILED = Counter(
    "tracker_notifications_failed",
    "Deliveries answered 503: nothing stored, the platform retries",
    ["reason"],
    registry=REGISTRY,
)
INGEST_SECONDS = Histogram(
    "tracker_ingest_seconds",
    "Time from receipt to answer on POST /v1/notifications",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
    registry=REGISTRY,
)
COMMIT_BATCH = Histogram(
    "tracker_commit_batch_size",
    "Events per committed append transaction",
    buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500, 1000),
    registry=REGISTRY,
)
POOL = Gauge(
    "tracker_db_pool_connections",
    "Database connections of the serving processes, by state",
    ["state"],
    registry=REGISTRY,
    multiprocess_mode="livesum",
)

# The AMQP channel (tracker/amqp/). With `serve --workers N`, one worker consumes.
AMQP_MESSAGES = Counter(
    "tracker_amqp_messages",
    "AMQP messages, by outcome: accepted (committed to the log), rejected (refused, kept in "
    "`rejected`, and accepted on the link), released (unsettled when its connection ended: the "
    "broker delivers it again)",
    ["outcome"],
    registry=REGISTRY,
)
AMQP_CONNECTIONS = Counter(
    "tracker_amqp_connections", "AMQP connections opened (links attached)", registry=REGISTRY
)
AMQP_DROPS = Counter(
    "tracker_amqp_connection_drops",
    "AMQP connections that ended or failed to open; the log says why",
    registry=REGISTRY,
)
AMQP_STATE = Gauge(
    "tracker_amqp_state",
    "1 for the AMQP consumer's state: open, held (the database is unavailable: no credit "
    "given), connecting, waiting (to connect again), stopped",
    ["state"],
    registry=REGISTRY,
    multiprocess_mode="livesum",
)
AMQP_LINK = Gauge(
    "tracker_amqp_link",
    "The AMQP links now: credit (messages the broker may still send), unsettled (received, "
    "not yet settled), available (messages waiting in the queue, when the broker says)",
    ["measure"],
    registry=REGISTRY,
    multiprocess_mode="livesum",
)


def exposition(extra: CollectorRegistry | None = None) -> bytes:
    """The text format: this process's metrics, or every worker's in multiprocess mode."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        text = generate_latest(registry)
    else:
        text = generate_latest(REGISTRY)
    return text + (generate_latest(extra) if extra is not None else b"")


# The IoTDA reconciler (tracker/iotda/). With `serve --workers N`, one worker reconciles.
IOTDA_REQUESTS = Counter(
    "tracker_iotda_requests",
    "Requests to IoTDA's API, by call (ListBatchTasks, ShowBatchTask) and outcome: ok, "
    "throttled (429), unavailable (5xx, timeout, no connection), refused (other 4xx)",
    ["call", "outcome"],
    registry=REGISTRY,
)
IOTDA_WAITED = Counter(
    "tracker_iotda_budget_wait_seconds",
    "Seconds requests waited for the request budget (TRACKER_IOTDA_RATE) or a backoff",
    registry=REGISTRY,
)
IOTDA_BUDGET = Gauge(
    "tracker_iotda_budget_rate",
    "The request budget: requests a second the reconciler may send",
    registry=REGISTRY,
    multiprocess_mode="livesum",
)
IOTDA_BUDGET_USED = Gauge(
    "tracker_iotda_budget_used_ratio",
    "The share of the request budget spent over the last minute (0 to 1), by the reconciler "
    "and the guards' StopBatchTask calls together",
    registry=REGISTRY,
    multiprocess_mode="livesum",
)
IOTDA_BEHIND = Gauge(
    "tracker_iotda_tasks_behind",
    "Tasks due for a read that the reconciler has not got to yet",
    registry=REGISTRY,
    multiprocess_mode="livesum",
)
IOTDA_ERRORS = Counter(
    "tracker_iotda_errors",
    "Reconciler rounds that failed for no known reason (a bug, an append refused): logged, and "
    "tried again after a backoff",
    registry=REGISTRY,
)
IOTDA_OBSERVATIONS = Counter(
    "tracker_iotda_observations",
    "Changes the reconciler appended to the log, by event type",
    ["type"],
    registry=REGISTRY,
)

# Webhooks (tracker/webhooks/): each attempt's outcome, and the rows still to send.
WEBHOOK_DELIVERIES = Counter(
    "tracker_webhook_deliveries",
    "Webhook delivery attempts, by outcome: delivered (answered 2xx), failed (to be retried "
    "after a backoff), dead (failed past TRACKER_WEBHOOK_GIVE_UP: a dead letter)",
    ["outcome"],
    registry=REGISTRY,
)
WEBHOOK_PENDING = Gauge(
    "tracker_webhook_pending",
    "Webhook deliveries pending (due or waiting for a retry), as last counted by a deliverer",
    registry=REGISTRY,
    multiprocess_mode="livemax",
)

# Guards (tracker/store/alerting.py, tracker/alerts/): decisions that failed (a bug: the
# deliveries still commit, the clock decides again), and StopBatchTask calls by outcome. The
# alerts by state are counted from the database at each scrape (http/metrics.py).
GUARD_ERRORS = Counter(
    "tracker_guard_errors",
    "Appends whose rollouts' alerts could not be decided (logged; the clock decides again)",
    registry=REGISTRY,
)
GUARD_STOPS = Counter(
    "tracker_guard_stops",
    "StopBatchTask calls made for firing guards, by outcome: stopping, refused, failed",
    ["outcome"],
    registry=REGISTRY,
)
