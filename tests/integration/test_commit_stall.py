"""200 means durable, shown deterministically: COMMIT is held, and no answer leaves meanwhile.

A deferred constraint trigger runs at COMMIT; here it waits for an advisory lock the test holds,
so the append's commit stalls for exactly as long as the test wants (issue 12, item 7).
"""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
from aiohttp.test_utils import TestClient

from tests.support.waiting import lock_waiters, until_waiting_for_lock

STALL_LOCK = 4242
STALL = f"""
CREATE FUNCTION stall_commit() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock_shared({STALL_LOCK});
    RETURN NULL;
END $$;
CREATE CONSTRAINT TRIGGER stall_commit AFTER INSERT ON events
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION stall_commit();
"""


async def test_no_200_leaves_before_the_commit_is_visible(
    client: TestClient[Any, Any], database_url: str, examples: dict[str, bytes]
) -> None:
    await client.get("/readyz")  # the schema is migrated by now
    holder = await asyncpg.connect(database_url)
    other = await asyncpg.connect(database_url)
    try:
        await holder.execute(STALL)
        await holder.execute("SELECT pg_advisory_lock($1)", STALL_LOCK)
        posting = asyncio.create_task(
            client.post(
                "/v1/notifications", data=examples["oceanconnect-swUpgradeStateChangeNotify"]
            )
        )
        # The append has run and waits in COMMIT: its lock request is visible, its row is not.
        # (In this database only: another run of this test may hold the same key in its own.)
        await until_waiting_for_lock(other, key=STALL_LOCK, unless_done=[posting])
        assert await lock_waiters(other, STALL_LOCK) == 1, "the append never reached its commit"
        await asyncio.sleep(0.5)  # what is watched: no answer leaves while the commit waits
        assert not posting.done(), "an answer left while the commit was still pending"
        assert await other.fetchval("SELECT count(*) FROM events") == 0

        await holder.execute("SELECT pg_advisory_unlock($1)", STALL_LOCK)
        response = await asyncio.wait_for(posting, 10)
        assert response.status == 200
        position = (await response.json())["position"]
        # The moment the 200 is read, another connection sees the row.
        assert await other.fetchval("SELECT count(*) FROM events WHERE position = $1", position)
    finally:
        await holder.close()
        await other.close()
