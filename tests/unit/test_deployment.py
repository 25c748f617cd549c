"""The deployment files say what the README promises: PostgreSQL 16, health checks, no root."""

import re
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]


def test_compose_runs_postgres_16_and_the_tracker_with_health_checks() -> None:
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    assert services["postgres"]["image"].startswith("postgres:16")
    assert "healthcheck" in services["postgres"]
    tracker = services["tracker"]
    assert "/readyz" in " ".join(tracker["healthcheck"]["test"])
    assert tracker["environment"]["TRACKER_DATABASE_URL"].startswith("postgresql://")


def test_compose_serves_as_the_least_privilege_role_that_migrate_sets_up() -> None:
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    migrate, tracker = services["migrate"], services["tracker"]
    assert migrate["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert migrate["command"][-2:] == ["--runtime-role", "tracker_app"]
    assert migrate["environment"]["TRACKER_DATABASE_URL"].startswith("postgresql://tracker:")
    assert tracker["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert tracker["environment"]["TRACKER_DATABASE_URL"].startswith("postgresql://tracker_app:")


def test_the_image_runs_as_a_user_that_is_not_root() -> None:
    lines = (ROOT / "Dockerfile").read_text().splitlines()
    users = [line.split()[1] for line in lines if line.startswith("USER ")]
    assert users
    assert users[-1] not in {"root", "0"}
    assert any(line.startswith("HEALTHCHECK") for line in lines)


def test_the_wheel_ships_the_migrations(tmp_path: Path) -> None:
    out = tmp_path
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(ROOT)],
        check=True,
        capture_output=True,
    )
    [wheel] = out.glob("tracker-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    shipped = sorted(
        n.removeprefix("tracker/sql/")
        for n in names
        if n.startswith("tracker/sql/") and n.endswith(".sql")
    )
    sql = ROOT / "sql"  # the numbered migrations and, in definitions/, the current definitions
    assert shipped == sorted(p.relative_to(sql).as_posix() for p in sql.rglob("*.sql"))
    assert "definitions/13_tracker_append.sql" in shipped


def test_the_image_and_compose_refuse_to_serve_open() -> None:
    """The image listens on every address, so without both tokens `serve` refuses to start
    there (exit 2), and compose will not even start without them."""
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "TRACKER_HOST=0.0.0.0" in dockerfile
    assert "INSECURE_OPEN" not in dockerfile
    environment = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]["tracker"][
        "environment"
    ]
    for token in ("TRACKER_INGEST_TOKEN", "TRACKER_READ_TOKEN"):
        assert environment[token] == f"${{{token}:?set {token}}}"
    assert "TRACKER_INSECURE_OPEN" not in environment


def _pins(lock: Path) -> dict[str, str]:
    """name -> version of each pin in a lock file, checking that every pin carries hashes."""
    pins: dict[str, str] = {}
    text = lock.read_text()
    for block in re.split(r"\n(?=[A-Za-z0-9])", text):
        first = block.split(" ", 1)[0]
        if "==" not in first:
            continue
        name, version = first.split("==", 1)
        assert "--hash=sha256:" in block, f"{name} is pinned without a hash in {lock.name}"
        pins[canonicalize_name(name)] = version
    return pins


def _requirements(extra: str | None = None) -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    listed = project["dependencies"] if extra is None else project["optional-dependencies"][extra]
    return [Requirement(line) for line in listed]


def test_the_locks_pin_every_dependency_within_its_floor_with_hashes() -> None:
    """The image installs requirements/runtime.lock, CI requirements/dev.lock (uv pip compile
    --universal --generate-hashes); a dependency added or raised without relocking fails here."""
    runtime = _pins(ROOT / "requirements" / "runtime.lock")
    dev = _pins(ROOT / "requirements" / "dev.lock")
    for requirements, pins in (
        (_requirements(), runtime),
        (_requirements(), dev),
        (_requirements("test"), dev),
        (_requirements("bench"), dev),
    ):
        for requirement in requirements:
            name = canonicalize_name(requirement.name)
            assert name in pins, f"{name} is not in the lock"
            assert requirement.specifier.contains(pins[name], prereleases=True), (
                f"{name}=={pins[name]} is below {requirement.specifier}"
            )


def test_the_image_is_pinned_by_digest_and_installs_only_hashed_files() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    bases = re.findall(r"^FROM (\S+)", dockerfile, flags=re.MULTILINE)
    assert bases
    assert all(re.fullmatch(r"python:[\w.-]+@sha256:[0-9a-f]{64}", base) for base in bases), bases
    assert "--require-hashes -r /tmp/runtime.lock" in dockerfile
    assert "pip install --no-cache-dir --no-deps /wheels/" in dockerfile
