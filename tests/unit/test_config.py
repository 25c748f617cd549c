from pathlib import Path

import pytest

from tracker.config import EVERYWHERE, Exposed, Settings


def test_defaults() -> None:
    settings = Settings.from_env({})
    assert settings.database_url is None
    assert settings.data_dir == Path(".tracker")
    assert settings.max_body_bytes == 1024 * 1024
    assert settings.ingest_token is None
    assert settings.body_timeout == 10.0


def test_environment_then_flags() -> None:
    settings = Settings.from_env(
        {
            "TRACKER_PORT": "9000",
            "TRACKER_INGEST_TOKEN": "s3",
            "TRACKER_DB_TIMEOUT": "2.5",
            "TRACKER_READ_TOKEN": "",
            "TRACKER_BODY_TIMEOUT": "2.5",
        }
    )
    assert settings.body_timeout == 2.5
    assert (settings.port, settings.ingest_token, settings.db_timeout, settings.read_token) == (
        9000,
        "s3",
        2.5,
        None,
    )
    assert settings.with_overrides(port=9100, host=None).port == 9100


def test_a_bad_value_is_a_clear_error() -> None:
    with pytest.raises(SystemExit, match="TRACKER_PORT='http' is not a valid int"):
        Settings.from_env({"TRACKER_PORT": "http"})


@pytest.mark.parametrize(
    ("env", "listens"),
    [
        ({}, "127.0.0.1"),  # no token: this machine only
        ({"TRACKER_INGEST_TOKEN": "i"}, "127.0.0.1"),
        ({"TRACKER_READ_TOKEN": "r"}, "127.0.0.1"),
        ({"TRACKER_INGEST_TOKEN": "i", "TRACKER_READ_TOKEN": "r"}, EVERYWHERE),
        ({"TRACKER_HOST": "127.0.0.1"}, "127.0.0.1"),
        ({"TRACKER_HOST": "::1"}, "::1"),
        ({"TRACKER_HOST": "localhost"}, "localhost"),
        ({"TRACKER_HOST": "127.8.9.10"}, "127.8.9.10"),
        ({"TRACKER_HOST": EVERYWHERE, "TRACKER_INSECURE_OPEN": "1"}, EVERYWHERE),
        (
            {"TRACKER_HOST": "10.1.2.3", "TRACKER_INGEST_TOKEN": "i", "TRACKER_READ_TOKEN": "r"},
            "10.1.2.3",
        ),
    ],
)
def test_closed_by_default(env: dict[str, str], listens: str) -> None:
    assert Settings.from_env(env).listen_address() == listens


@pytest.mark.parametrize(
    "env",
    [
        {"TRACKER_HOST": EVERYWHERE},
        {"TRACKER_HOST": "::"},
        {"TRACKER_HOST": "10.1.2.3", "TRACKER_INGEST_TOKEN": "i"},
        {"TRACKER_HOST": "tracker.example.com", "TRACKER_READ_TOKEN": "r"},
        {"TRACKER_HOST": EVERYWHERE, "TRACKER_INSECURE_OPEN": "0"},
    ],
)
def test_listening_beyond_loopback_without_both_tokens_is_refused(env: dict[str, str]) -> None:
    with pytest.raises(Exposed, match=r"refusing to listen on .* unset: anyone who can reach it"):
        Settings.from_env(env).listen_address()
