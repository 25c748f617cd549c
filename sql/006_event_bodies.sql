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
-- A dictionary can never change: every body compressed with it needs it to be read back
-- (its trigger: definitions/20_refuse_rewrite.sql).

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
-- codec (definitions/12_tracker_append_kept.sql).
