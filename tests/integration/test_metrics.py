"""GET /metrics: what was received, accepted and refused, latency, batches, pool, replay."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.conftest import MakeClient
from tracker.store.replay import replay

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]  # by name and sorted labels


async def scrape(client: TestClient[Any, Any]) -> Samples:
    response = await client.get("/metrics")
    assert response.status == 200
    assert response.content_type == "text/plain"
    samples: Samples = {}
    for family in text_string_to_metric_families(await response.text()):
        for sample in family.samples:
            samples[sample.name, tuple(sorted(sample.labels.items()))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


async def test_counters_follow_what_happens(
    make_client: MakeClient, examples: dict[str, bytes]
) -> None:
    client = await make_client(ingest_token="ingest-token-metrics")
    before = await scrape(client)
    auth = {"Authorization": "Bearer ingest-token-metrics"}
    for raw in examples.values():
        assert (await client.post("/v1/notifications", data=raw, headers=auth)).status == 200
    assert (
        await client.post(
            "/v1/notifications", data=b'{"notifyType": "deviceDataChanged"}', headers=auth
        )
    ).status == 200
    assert (await client.post("/v1/notifications", data=b"nope", headers=auth)).status == 400
    assert (await client.post("/v1/notifications", data=b"{}")).status == 401
    after = await scrape(client)

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert grew("tracker_notifications_received_total") == 7
    assert grew("tracker_notifications_accepted_total", type="swUpgradeStateChangeNotify") == 1
    assert grew("tracker_notifications_accepted_total", type="batchtask.update") == 1
    assert grew("tracker_notifications_accepted_total", type="unrecognised") == 1
    assert grew("tracker_notifications_rejected_total", reason="invalid_json") == 1
    assert grew("tracker_notifications_rejected_total", reason="unauthorized") == 1
    assert grew("tracker_ingest_seconds_count") == 7
    assert grew("tracker_commit_batch_size_count") == 6
    assert value(after, "tracker_db_pool_connections", state="max") == 10
    assert value(after, "tracker_replay_running") == 0


async def test_unknown_types_do_not_become_labels(client: TestClient[Any, Any]) -> None:
    for n in range(50):
        body = f'{{"notifyType": "made-up-{n}"}}'.encode()
        assert (await client.post("/v1/notifications", data=body)).status == 200
    samples = await scrape(client)
    assert not any("made-up" in str(labels) for _, labels in samples)


async def test_replay_progress_is_exposed(
    client: TestClient[Any, Any], database_url: str, examples: dict[str, bytes]
) -> None:
    for raw in examples.values():
        await client.post("/v1/notifications", data=raw)
    await replay(database_url, check=False)
    samples = await scrape(client)
    assert value(samples, "tracker_replay_running") == 0
    assert value(samples, "tracker_replay_events_done") == 5
    assert value(samples, "tracker_replay_events_total") == 5
    assert value(samples, "tracker_replay_last_pause_seconds") > 0
    await replay(database_url, check=True)
    samples = await scrape(client)
    assert value(samples, "tracker_replay_last_check_drift") == 0
