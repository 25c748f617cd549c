from pathlib import Path

import pytest

from tracker.config import Settings


def test_defaults():
    settings = Settings.from_env({})
    assert settings.database_url is None
    assert settings.data_dir == Path(".tracker")
    assert settings.max_body_bytes == 1024 * 1024
    assert settings.ingest_token is None
    assert settings.body_timeout == 10.0


def test_environment_then_flags():
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


def test_a_bad_value_is_a_clear_error():
    with pytest.raises(SystemExit, match="TRACKER_PORT='http' is not a valid int"):
        Settings.from_env({"TRACKER_PORT": "http"})
