"""The embedded default: a private PostgreSQL (from the pgserver wheel) under the data directory.

Any `tracker` process pointed at the same data directory shares the one server; pgserver keeps
a list of the processes using it and the last one to leave stops it.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

log = logging.getLogger(__name__)


def start(data_dir: Path) -> str:
    """Start (or join) the embedded server and return its connection URL."""
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset (servers, CI); pgserver copes.
        warnings.simplefilter("ignore")
        import pgserver  # noqa: PLC0415 - heavy, and only needed on the embedded path

    logging.getLogger("pgserver").setLevel(logging.WARNING)
    data_dir = data_dir.expanduser().resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    server = pgserver.get_server(  # type: ignore[attr-defined]
        data_dir / "pgdata", cleanup_mode="stop"
    )
    url: str = server.get_uri()
    return url
