"""The AMQP channel's pure rules: IoTDA's username, settlement, backoff, and the settings."""

from __future__ import annotations

import random
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tracker.amqp import iotda
from tracker.amqp.backoff import CEILING, FLOOR, STABLE, Backoff
from tracker.amqp.endpoint import Misconfigured, endpoint
from tracker.amqp.settlement import Fate, parks_the_next, replenish, settles
from tracker.config import Settings

# -- IoTDA's username (IoTDA user guide, "AMQP client access")


def test_the_username_is_iotda_s_three_fields_with_a_13_digit_millisecond_timestamp() -> None:
    name = iotda.username("AK1234", 1_765_000_000_123, "inst-9")
    assert name == "accessKey=AK1234|timestamp=1765000000123|instanceId=inst-9"


def test_without_an_instance_id_the_field_is_left_out() -> None:
    assert iotda.username("AK1234", 1_765_000_000_123) == (
        "accessKey=AK1234|timestamp=1765000000123"
    )


def test_each_connection_gets_the_timestamp_of_its_own_moment() -> None:
    first = iotda.username("AK", 1_765_000_000_000)
    an_hour_later = iotda.username("AK", 1_765_003_600_000)
    assert first != an_hour_later
    assert an_hour_later.endswith("timestamp=1765003600000")


@given(st.integers(min_value=0, max_value=9_999_999_999_999))
def test_the_timestamp_is_always_13_digits(now_ms: int) -> None:
    name = iotda.username("AK", now_ms)
    stamp = re.fullmatch(r"accessKey=AK\|timestamp=(\d+)", name)
    assert stamp is not None
    assert len(stamp[1]) == 13
    assert int(stamp[1]) == now_ms


@pytest.mark.parametrize(
    ("key", "instance"),
    [("AK|x", None), ("AK=x", None), (" AK", None), ("", None), ("AK", "a|b"), ("AK", "a=b")],
)
def test_a_key_or_instance_that_would_change_the_username_s_meaning_is_refused(
    key: str, instance: str | None
) -> None:
    with pytest.raises(iotda.BadCredential):
        iotda.username(key, 0, instance)


# -- settlement: accepted only once kept; otherwise left unsettled; never AMQP's `rejected`


def test_a_message_is_settled_exactly_when_it_is_kept_somewhere() -> None:
    assert {fate for fate in Fate if settles(fate)} == {Fate.COMMITTED, Fate.REFUSED}


def test_behind_a_parked_message_its_stream_waits_too() -> None:
    assert parks_the_next(Fate.PARKED)
    assert not parks_the_next(Fate.COMMITTED)
    assert not parks_the_next(Fate.REFUSED)  # a refusal is kept: the stream goes on


def test_credit_comes_back_until_the_server_stops() -> None:
    assert replenish(stopping=False)
    assert not replenish(stopping=True)


def test_metrics_count_what_was_settled_and_how() -> None:
    assert {fate.counted_as for fate in Fate} == {"accepted", "rejected", None}
    assert Fate.REFUSED.counted_as == "rejected"  # kept in `rejected`, accepted on the link


# -- backoff


def test_backoff_grows_to_its_ceiling_with_jitter() -> None:
    backoff = Backoff(rng=random.Random(7))
    delays = [backoff.next_delay() for _ in range(12)]
    ceilings = [min(CEILING, FLOOR * 2**n) for n in range(12)]
    for delay, ceiling in zip(delays, ceilings, strict=True):
        assert ceiling / 2 <= delay <= ceiling
    assert max(delays) > CEILING / 2  # it reached the ceiling's range


def test_two_consumers_do_not_come_back_in_step() -> None:
    one, other = Backoff(rng=random.Random(1)), Backoff(rng=random.Random(2))
    assert [one.next_delay() for _ in range(5)] != [other.next_delay() for _ in range(5)]


def test_a_connection_that_stayed_up_starts_again_from_the_floor() -> None:
    backoff = Backoff(rng=random.Random(3))
    for _ in range(8):
        backoff.next_delay()
    backoff.succeeded(lasted=1.0)  # a flapping broker: no reset
    assert backoff.next_delay() > FLOOR
    backoff.succeeded(lasted=STABLE)
    assert backoff.next_delay() <= FLOOR


# -- the settings


def _settings(**values: object) -> Settings:
    return Settings(**{"amqp_url": "amqps://broker.example:5671", **values})  # type: ignore[arg-type]


def test_no_url_no_channel() -> None:
    assert endpoint(Settings()) is None


def test_an_iotda_endpoint() -> None:
    found = endpoint(
        _settings(amqp_access_key="AK", amqp_access_code="code", amqp_instance_id="i-1")
    )
    assert found is not None
    assert (found.url, found.address, found.tls, found.verify) == (
        "amqps://broker.example:5671",
        "DefaultQueue",
        True,
        True,
    )
    user, password = found.credentials(1_765_000_000_000)
    assert user == "accessKey=AK|timestamp=1765000000000|instanceId=i-1"
    assert password == "code"


def test_a_plain_broker_takes_its_credentials_from_the_url_and_logs_none() -> None:
    found = endpoint(_settings(amqp_url="amqp://guest:s%40cret@127.0.0.1"))
    assert found is not None
    assert found.credentials(0) == ("guest", "s@cret")
    assert found.url == "amqp://127.0.0.1:5672"  # what the log names: no password
    assert not found.tls


def test_insecure_tls_is_asked_for_by_name() -> None:
    found = endpoint(_settings(insecure_amqp_tls=True))
    assert found is not None
    assert not found.verify


@pytest.mark.parametrize(
    ("values", "says"),
    [
        ({"amqp_url": "http://broker:5672"}, "amqp:// or amqps://"),
        ({"amqp_url": "amqps://"}, "names no host"),
        ({"amqp_url": "amqps://broker/DefaultQueue"}, "TRACKER_AMQP_ADDRESS"),
        ({"amqp_url": "amqps://broker:99999"}, "not a URL"),
        ({"amqp_links": 0}, "1 to 10"),
        ({"amqp_links": 11}, "1 to 10"),
        ({"amqp_credit": 0}, "at least 1"),
        ({"amqp_address": " "}, "TRACKER_AMQP_ADDRESS is empty"),
        ({"amqp_access_key": "AK"}, "TRACKER_AMQP_ACCESS_CODE is unset"),
        ({"amqp_access_code": "c"}, "TRACKER_AMQP_ACCESS_KEY is unset"),
        ({"amqp_instance_id": "i"}, "without TRACKER_AMQP_ACCESS_KEY"),
        ({"amqp_access_key": "A|K", "amqp_access_code": "c"}, "'|'"),
        (
            {"amqp_url": "amqps://u:p@broker", "amqp_access_key": "AK", "amqp_access_code": "c"},
            "give one",
        ),
        ({"amqp_ca_file": "/nonexistent/ca.pem"}, "cannot be read"),
    ],
)
def test_a_setting_the_channel_cannot_start_with_is_named(
    values: dict[str, object], says: str
) -> None:
    with pytest.raises(Misconfigured, match=re.escape(says)):
        endpoint(_settings(**values))
