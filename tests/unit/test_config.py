import os
import re
from dataclasses import Field, fields
from pathlib import Path
from typing import Any

import pytest

from tracker.cli import main, parser
from tracker.cli.flags import settings_of
from tracker.config import (
    EVERYWHERE,
    INTERNAL,
    MIN_TOKEN_LENGTH,
    Exposed,
    Settings,
    SharedToken,
    ShortToken,
    flags,
    kind_of,
    refuse_short_tokens,
    variable,
)
from tracker.http.workers import worker_environment

INGEST, READ = "ingest-token-16ch", "read-token-16char"


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
            "TRACKER_INGEST_TOKEN": "s3-ingest-token-1",
            "TRACKER_DB_TIMEOUT": "2.5",
            "TRACKER_READ_TOKEN": "",
            "TRACKER_BODY_TIMEOUT": "2.5",
        }
    )
    assert settings.body_timeout == 2.5
    assert (settings.port, settings.ingest_token, settings.db_timeout, settings.read_token) == (
        9000,
        "s3-ingest-token-1",
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
        ({"TRACKER_INGEST_TOKEN": INGEST}, "127.0.0.1"),
        ({"TRACKER_READ_TOKEN": READ}, "127.0.0.1"),
        ({"TRACKER_INGEST_TOKEN": INGEST, "TRACKER_READ_TOKEN": READ}, EVERYWHERE),
        ({"TRACKER_HOST": "127.0.0.1"}, "127.0.0.1"),
        ({"TRACKER_HOST": "::1"}, "::1"),
        ({"TRACKER_HOST": "localhost"}, "localhost"),
        ({"TRACKER_HOST": "127.8.9.10"}, "127.8.9.10"),
        ({"TRACKER_HOST": EVERYWHERE, "TRACKER_INSECURE_OPEN": "1"}, EVERYWHERE),
        (
            {
                "TRACKER_HOST": "10.1.2.3",
                "TRACKER_INGEST_TOKEN": INGEST,
                "TRACKER_READ_TOKEN": READ,
            },
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
        {"TRACKER_HOST": "10.1.2.3", "TRACKER_INGEST_TOKEN": INGEST},
        {"TRACKER_HOST": "tracker.example.com", "TRACKER_READ_TOKEN": READ},
        {"TRACKER_HOST": EVERYWHERE, "TRACKER_INSECURE_OPEN": "0"},
    ],
)
def test_listening_beyond_loopback_without_both_tokens_is_refused(env: dict[str, str]) -> None:
    with pytest.raises(Exposed, match=r"refusing to listen on .* unset: anyone who can reach it"):
        Settings.from_env(env).listen_address()


@pytest.mark.parametrize("name", ["ingest_token", "read_token", "metrics_token", "admin_token"])
def test_a_token_shorter_than_16_characters_is_refused(name: str) -> None:
    assert MIN_TOKEN_LENGTH == 16
    refuse_short_tokens(Settings().with_overrides(**{name: "x" * 16}))  # 16 is enough
    refuse_short_tokens(Settings())  # unset is not short (closed-by-default rules it)
    with pytest.raises(ShortToken, match=rf"^TRACKER_{name.upper()} is 15 characters long; every "):
        refuse_short_tokens(Settings().with_overrides(**{name: "x" * 15}))


ADMIN = "admin-token-16char"


@pytest.mark.parametrize("name", ["ingest_token", "read_token", "metrics_token"])
def test_an_admin_token_equal_to_another_token_is_refused(name: str) -> None:
    """The ingest token travels in the platform's callback URL (and any other may, as
    `?token=`): were it the admin token too, that URL would write guards."""
    others = {"ingest_token": INGEST, "read_token": READ, "metrics_token": "metrics-token-16c"}
    refuse_short_tokens(Settings().with_overrides(admin_token=ADMIN, **others))  # all distinct
    shared = Settings().with_overrides(**{**others, name: ADMIN}, admin_token=ADMIN)
    with pytest.raises(SharedToken) as refused:
        refuse_short_tokens(shared)
    message = str(refused.value)
    assert message.startswith(f"TRACKER_ADMIN_TOKEN is the same as TRACKER_{name.upper()}: ")
    assert ADMIN not in message
    assert "\n" not in message


def test_an_ingest_token_that_reads_is_refused() -> None:
    """The callback URL carries the ingest token: it must read nothing."""
    with pytest.raises(SharedToken) as refused:
        refuse_short_tokens(Settings().with_overrides(ingest_token=READ, read_token=READ))
    assert str(refused.value).startswith("TRACKER_INGEST_TOKEN is the same as TRACKER_READ_TOKEN")
    assert READ not in str(refused.value)


def test_serve_refuses_an_admin_token_equal_to_another_in_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in [name for name in os.environ if name.startswith("TRACKER_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("TRACKER_INGEST_TOKEN", ADMIN)
    monkeypatch.setenv("TRACKER_READ_TOKEN", READ)
    monkeypatch.setenv("TRACKER_ADMIN_TOKEN", ADMIN)
    assert main(["serve", "--host", "127.0.0.1"]) == 2  # refused before any database is opened
    err = capsys.readouterr().err
    assert err.startswith("tracker serve: TRACKER_ADMIN_TOKEN is the same as TRACKER_INGEST_TOKEN")
    assert err.count("\n") == 1
    assert ADMIN not in err


def test_the_proxy_is_trusted_only_when_asked() -> None:
    assert Settings.from_env({}).trust_proxy is False
    assert Settings.from_env({"TRACKER_TRUST_PROXY": "1"}).trust_proxy is True
    assert Settings.from_env({"TRACKER_TRUST_PROXY": "0"}).trust_proxy is False


README = Path(__file__).resolve().parents[2] / "README.md"
# Read by `tracker migrate --runtime-role` alone, and documented beside the settings.
NOT_SETTINGS = {"TRACKER_RUNTIME_PASSWORD"}


def _configuration() -> tuple[str, dict[str, str]]:
    """README's Configuration section: its prose before the table, and each row's default cell
    by the row's variables (several variables in one row share the key, joined by ' / ')."""
    section = README.read_text().split("\n## Configuration\n", 1)[1].split("\n## ", 1)[0]
    prose, table = section.split("\n| variable |", 1)
    rows = {}
    for line in table.splitlines():
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        if line.startswith("| `TRACKER_"):
            rows[" / ".join(re.findall(r"`(TRACKER_\w+)`", cells[0]))] = cells[1]
    return prose, rows


def _shown(default: object) -> str:
    """A default as the README's table writes it."""
    if default is None or default is False:
        return "unset"
    if isinstance(default, Path):
        return f"`./{default}`"
    return f"`{default:g}`" if isinstance(default, float) else f"`{default}`"


def test_every_setting_is_in_the_readme_table_with_its_default() -> None:
    _, rows = _configuration()
    documented = {name for key in rows for name in key.split(" / ")}
    settings = {variable(spec.name) for spec in fields(Settings) if spec.name not in INTERNAL}
    assert settings - documented == set(), "rows missing from README.md's settings table"
    assert documented - settings == NOT_SETTINGS, "rows of README.md naming no setting"
    for spec in fields(Settings):
        cell = rows.get(variable(spec.name))  # a row of its own: its default is checked
        if cell is not None:
            assert cell.split(" (")[0] == _shown(spec.default), spec.name


def test_every_flag_is_named_in_the_readme_and_names_its_variable() -> None:
    prose, _ = _configuration()
    declared = {f"--{spec.name.replace('_', '-')}" for spec, _ in flags()}
    assert set(re.findall(r"`(--[a-z-]+)`", prose)) == declared
    for spec, flag in flags():
        assert variable(spec.name) in flag.help, spec.name


def _changed(spec: Field[Any]) -> Any:  # of the setting's own type
    """A value of the setting's type other than its default."""
    kind, default = kind_of(spec), spec.default
    if kind is bool:
        return not default
    if kind in (int, float):
        assert isinstance(default, int | float)
        return default + 7
    return Path("/srv/tracker") if issubclass(kind, Path) else f"{spec.name}-value".upper()


def test_the_environment_of_settings_reads_back_as_the_same_settings() -> None:
    """What `serve --workers` hands its workers: every setting, whatever its value."""
    changed = Settings(**{spec.name: _changed(spec) for spec in fields(Settings)})
    for settings in (Settings(), changed):
        assert Settings.from_env(settings.environment()) == settings


def test_every_flag_given_to_serve_reaches_the_workers() -> None:
    """`serve --workers 2 --log-level debug` left its workers at INFO (issue 22): a flag now
    sets its setting, and the workers get every setting in their environment."""
    given = {spec.name: _changed(spec) for spec, _ in flags()}
    argv = ["serve", "--host", "127.0.0.1"]
    for name, value in given.items():
        if name != "host":
            flag = f"--{name.replace('_', '-')}"
            argv += [flag] if value is True else [flag, str(value)]
    settings = settings_of(parser().parse_args(argv))
    given["host"] = "127.0.0.1"
    assert {name: getattr(settings, name) for name in given} == given
    workers = Settings.from_env(worker_environment(settings, "postgresql://db/tracker"))
    expected = settings.with_overrides(
        database_url="postgresql://db/tracker", reuse_port=True, workers=1
    )
    assert workers == expected
    assert workers.log_level == "LOG_LEVEL-VALUE"  # as given, in logging's capitals


def test_a_command_s_own_log_level_yields_to_the_environment_and_the_flag() -> None:
    assert settings_of(parser().parse_args(["devices"])).log_level == "WARNING"
    assert settings_of(parser().parse_args(["serve"])).log_level == "INFO"
    assert Settings.from_env({"TRACKER_LOG_LEVEL": "error"}, log_level="WARNING").log_level == (
        "ERROR"
    )
    assert settings_of(parser().parse_args(["devices", "--log-level", "debug"])).log_level == (
        "DEBUG"
    )
