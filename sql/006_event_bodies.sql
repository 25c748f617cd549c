-- Bodies are no longer stored twice. The log kept each delivery as `raw` (the exact bytes) and
-- again as `payload` (jsonb, "for querying"): nothing queried it, and it doubled the log and the
-- WAL. `raw` alone is the truth (DESIGN.md invariant 2); jsonb also refused content that `raw`
-- holds fine (numbers beyond `numeric`'s range).
--
-- Bodies are also compressed. PostgreSQL compresses only values over about 2 kB, and a platform
-- notification is about 200 bytes of the same keys and enum values again and again, so zstd is
-- given a dictionary made of the platforms' own documented notifications (below): a typical body
-- shrinks to about a third. `codec` says how `raw` holds the body: 0, exactly as received (rows
-- written before this migration, and any body the dictionary would not shrink); n > 0, a zstd
-- frame made with dictionary n of `body_codecs`. tracker/store/bodies.py reads and writes them;
-- the hash chain is computed over the body as received, never over its stored form.
--
-- Rows logged before this migration keep their old layout until the table is rewritten
-- (`VACUUM FULL events`, which takes the table offline while it runs).

ALTER TABLE events DROP COLUMN payload;
ALTER TABLE events ADD COLUMN codec smallint NOT NULL DEFAULT 0 CHECK (codec >= 0);

CREATE TABLE body_codecs (
    id          smallint    PRIMARY KEY CHECK (id > 0),
    method      text        NOT NULL CHECK (method = 'zstd'),
    dictionary  bytea       NOT NULL,  -- a raw-content zstd dictionary
    created_at  timestamptz NOT NULL DEFAULT now()
);
-- A dictionary can never change: every body compressed with it needs it to be read back.
CREATE TRIGGER body_codecs_append_only
    BEFORE UPDATE OR DELETE OR TRUNCATE ON body_codecs
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_rewrite();

-- Dictionary 1: enum values, then each of the five notification types as the platforms document
-- them, pretty-printed, with ", "/": " separators and compact (zstd finds recent content cheaper
-- to refer to, so the commonest shapes come last).
INSERT INTO body_codecs (id, method, dictionary) VALUES (1, 'zstd', convert_to($dictionary$"Waitting" "Processing" "Success" "PartialSuccess" "Fail" "Stopped" "Initializing" "Stopping" "softwareUpgrade" "firmwareUpgrade" "SUCCESS" "FAIL" "idle" "downloading" "downloaded" "updating"
{
  "resource": "batchtask",
  "event": "update",
  "event_time": "20151212T121212Z",
  "event_time_ms": "2015-12-12T12:12:12.000Z",
  "request_id": "3fe58d5e-8697-4849-a165-7db128f7e776",
  "notify_data": {
    "body": {
      "status_desc": "status_desc",
      "task_id": "1a7ffc5c-d89c-44dd-8265",
      "task_type": "softwareUpgrade",
      "app_id": "1a7ffc5c-d89c-44dd-8265-b1653d951ce0",
      "status": "Waitting"
    }
  }
}

{
  "notifyType": "fwUpgradeResultNotify",
  "deviceId": "d-7f3a9c01",
  "appId": "app-4b21",
  "operationId": "op-20261121-02",
  "subOperationId": "sub-0002",
  "curVersion": "1.6",
  "targetVersion": "1.6",
  "sourceVersion": "1.3",
  "status": "SUCCESS",
  "statusDesc": "upgrade succeeded",
  "upgradeTime": "240"
}

{
  "notifyType": "swUpgradeResultNotify",
  "deviceId": "d-7f3a9c01",
  "appId": "app-4b21",
  "operationId": "op-20261121-01",
  "subOperationId": "sub-0001",
  "curVersion": "1.5",
  "targetVersion": "1.5",
  "sourceVersion": "1.0",
  "swUpgradeResult": "SUCCESS",
  "upgradeTime": "183",
  "resultDesc": "upgrade succeeded",
  "errorCode": "0",
  "description": "ok"
}

{
  "notifyType": "fwUpgradeStateChangeNotify",
  "deviceId": "d-7f3a9c01",
  "appId": "app-4b21",
  "operationId": "op-20261121-02",
  "subOperationId": "sub-0002",
  "step": "1",
  "stepDesc": "downloading"
}

{
  "notifyType": "swUpgradeStateChangeNotify",
  "deviceId": "d-7f3a9c01",
  "appId": "app-4b21",
  "operationId": "op-20261121-01",
  "subOperationId": "sub-0001",
  "swUpgradeState": "downloading"
}

{"resource": "batchtask", "event": "update", "event_time": "20151212T121212Z", "event_time_ms": "2015-12-12T12:12:12.000Z", "request_id": "3fe58d5e-8697-4849-a165-7db128f7e776", "notify_data": {"body": {"status_desc": "status_desc", "task_id": "1a7ffc5c-d89c-44dd-8265", "task_type": "softwareUpgrade", "app_id": "1a7ffc5c-d89c-44dd-8265-b1653d951ce0", "status": "Waitting"}}}
{"notifyType": "fwUpgradeResultNotify", "deviceId": "d-7f3a9c01", "appId": "app-4b21", "operationId": "op-20261121-02", "subOperationId": "sub-0002", "curVersion": "1.6", "targetVersion": "1.6", "sourceVersion": "1.3", "status": "SUCCESS", "statusDesc": "upgrade succeeded", "upgradeTime": "240"}
{"notifyType": "swUpgradeResultNotify", "deviceId": "d-7f3a9c01", "appId": "app-4b21", "operationId": "op-20261121-01", "subOperationId": "sub-0001", "curVersion": "1.5", "targetVersion": "1.5", "sourceVersion": "1.0", "swUpgradeResult": "SUCCESS", "upgradeTime": "183", "resultDesc": "upgrade succeeded", "errorCode": "0", "description": "ok"}
{"notifyType": "fwUpgradeStateChangeNotify", "deviceId": "d-7f3a9c01", "appId": "app-4b21", "operationId": "op-20261121-02", "subOperationId": "sub-0002", "step": "1", "stepDesc": "downloading"}
{"notifyType": "swUpgradeStateChangeNotify", "deviceId": "d-7f3a9c01", "appId": "app-4b21", "operationId": "op-20261121-01", "subOperationId": "sub-0001", "swUpgradeState": "downloading"}
{"resource":"batchtask","event":"update","event_time":"20151212T121212Z","event_time_ms":"2015-12-12T12:12:12.000Z","request_id":"3fe58d5e-8697-4849-a165-7db128f7e776","notify_data":{"body":{"status_desc":"status_desc","task_id":"1a7ffc5c-d89c-44dd-8265","task_type":"softwareUpgrade","app_id":"1a7ffc5c-d89c-44dd-8265-b1653d951ce0","status":"Waitting"}}}
{"notifyType":"fwUpgradeResultNotify","deviceId":"d-7f3a9c01","appId":"app-4b21","operationId":"op-20261121-02","subOperationId":"sub-0002","curVersion":"1.6","targetVersion":"1.6","sourceVersion":"1.3","status":"SUCCESS","statusDesc":"upgrade succeeded","upgradeTime":"240"}
{"notifyType":"swUpgradeResultNotify","deviceId":"d-7f3a9c01","appId":"app-4b21","operationId":"op-20261121-01","subOperationId":"sub-0001","curVersion":"1.5","targetVersion":"1.5","sourceVersion":"1.0","swUpgradeResult":"SUCCESS","upgradeTime":"183","resultDesc":"upgrade succeeded","errorCode":"0","description":"ok"}
{"notifyType":"fwUpgradeStateChangeNotify","deviceId":"d-7f3a9c01","appId":"app-4b21","operationId":"op-20261121-02","subOperationId":"sub-0002","step":"1","stepDesc":"downloading"}
{"notifyType":"swUpgradeStateChangeNotify","deviceId":"d-7f3a9c01","appId":"app-4b21","operationId":"op-20261121-01","subOperationId":"sub-0001","swUpgradeState":"downloading"}$dictionary$, 'UTF8'));

-- The append takes each body twice: as received (for the hash chain) and as stored, with its
-- codec. Otherwise as in 004_hash_chain.sql.
DROP FUNCTION tracker_append(bigint, text[], text[], text[], text[], bytea[], timestamptz[], timestamptz[]);
CREATE FUNCTION tracker_append(
    lock_key bigint, stream_types text[], stream_ids text[], event_types text[],
    bodies bytea[], stored bytea[], codecs smallint[], received timestamptz[],
    occurred timestamptz[]
) RETURNS SETOF bigint
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(lock_key);
    RETURN QUERY
    WITH RECURSIVE batch AS (
        SELECT t.*, row_number() OVER (PARTITION BY t.st, t.sid ORDER BY t.n) AS k
        FROM unnest(stream_types, stream_ids, event_types, bodies, stored, codecs, received, occurred)
            WITH ORDINALITY AS t(st, sid, et, body, raw, codec, received_at, occurred_at, n)
    ), chain AS (
        SELECT b.n, b.st, b.sid, b.k,
               sha256(coalesce(head.hash, '\x0000000000000000000000000000000000000000000000000000000000000000'::bytea) || b.body) AS hash
        FROM batch b
        LEFT JOIN LATERAL (
            SELECT e.hash FROM events e
            WHERE e.stream_type = b.st AND e.stream_id = b.sid
            ORDER BY e.position DESC LIMIT 1
        ) AS head ON true
        WHERE b.k = 1
        UNION ALL
        SELECT b.n, b.st, b.sid, b.k, sha256(c.hash || b.body)
        FROM chain c JOIN batch b ON b.st = c.st AND b.sid = c.sid AND b.k = c.k + 1
    )
    INSERT INTO events AS e
        (stream_type, stream_id, event_type, raw, codec, received_at, occurred_at, hash)
    SELECT b.st, b.sid, b.et, b.raw, b.codec, b.received_at, b.occurred_at, c.hash
    FROM batch b JOIN chain c USING (n)
    ORDER BY b.n
    RETURNING e.position;
END
$$;

-- The runtime role: the new append function, and the dictionaries to read bodies with.
CREATE OR REPLACE FUNCTION tracker_grant_runtime() RETURNS void LANGUAGE plpgsql AS $fn$
DECLARE
    grantee name := (SELECT role_name FROM runtime_role);
BEGIN
    IF grantee IS NULL THEN
        RETURN;
    END IF;
    EXECUTE format('GRANT USAGE ON SCHEMA %I TO %I', current_schema(), grantee);
    -- The log and the refusals: read and append, never rewrite.
    EXECUTE format('GRANT SELECT, INSERT ON events, rejected TO %I', grantee);
    -- Read models, maintained by upserts inside the append's transaction.
    EXECUTE format(
        'GRANT SELECT, INSERT, UPDATE ON device_tracks, device_transitions, operation_devices, '
        'tasks, task_transitions TO %I', grantee);
    -- What the server reads besides: migrations applied, replay progress (for /metrics), the
    -- dictionaries bodies are compressed with.
    EXECUTE format('GRANT SELECT ON schema_migrations, replay_progress, runtime_role, '
                   'body_codecs TO %I', grantee);
    EXECUTE format('GRANT USAGE ON ALL SEQUENCES IN SCHEMA %I TO %I', current_schema(), grantee);
    EXECUTE format('GRANT EXECUTE ON FUNCTION tracker_append(bigint, text[], text[], text[], '
                   'bytea[], bytea[], smallint[], timestamptz[], timestamptz[]) TO %I', grantee);
END
$fn$;
SELECT tracker_grant_runtime();
