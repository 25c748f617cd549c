"""The store's errors: the one choke point where driver and network failures become a
domain-level error, and the one way it says that what was asked for does not exist."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import asyncpg

log = logging.getLogger(__name__)


class NotFound(Exception):  # noqa: N818 - reads as "not found", like aiohttp-demos' RecordNotFound
    """What was asked for by its key has never been seen. Its message says what, for people; the
    HTTP layer answers it 404 `not_found` (http/errors.py) and the CLI exits 3 (cli/__init__.py),
    each in one place."""


class Unavailable(Exception):  # noqa: N818 - reads as "store unavailable"
    """The database could not be reached, or could not commit, in time: retrying may help."""


class Unstorable(Exception):  # noqa: N818 - reads as "content unstorable"
    """The database refused what one delivery would write: a value out of a type's range, an
    index entry over its size limit, a constraint. Retrying cannot help, so it is a refusal (the
    delivery is kept in `rejected`), never a 500 that the platform would retry for ever."""


# SQLSTATE classes that a delivery's content can raise: 22 (data exception), 23 (integrity
# constraint violation), 54 (program limit exceeded: an index row too large, too many columns).
CONTENT: tuple[type[BaseException], ...] = (
    asyncpg.DataError,
    asyncpg.IntegrityConstraintViolationError,
    asyncpg.ProgramLimitExceededError,
)


TRANSIENT: tuple[type[BaseException], ...] = (
    OSError,  # refused, reset, unreachable (ConnectionError is a subclass)
    TimeoutError,
    asyncpg.InterfaceError,  # connection closed under us, pool closing
    # The server ended the session (FATAL, then close) between two of our statements: asyncpg
    # took in the error but not yet the close, and refuses the next statement with "cannot
    # switch to state 15; another operation (2) is in progress". The pool then drops it.
    asyncpg.InternalClientError,
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.InsufficientResourcesError,  # 53xxx: disk full, too many connections
    asyncpg.OperatorInterventionError,  # 57xxx: admin shutdown, crash shutdown, query canceled
    asyncpg.TransactionRollbackError,  # 40xxx: serialization failure, deadlock
    # 25006: the database refuses writes (default_transaction_read_only, a standby promoted
    # away, a disk-full guard): nothing was stored; the platform's retry may well land.
    asyncpg.ReadOnlySQLTransactionError,
)


@contextmanager
def unavailable_on_failure(what: str) -> Iterator[None]:
    """Translate a failure to reach or commit to the database into `Unavailable`.

    Anything else escaping from here is a bug and should surface as one.
    """
    try:
        yield
    except TRANSIENT as error:
        log.warning("database unavailable during %s: %s: %s", what, type(error).__name__, error)
        raise Unavailable(f"database unavailable during {what}") from error
