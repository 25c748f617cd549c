-- Each event's link in its stream's hash chain covers every stored field of the event, not its
-- body alone (issue 12, item 5): its position, stream, type, receive and platform times, where
-- it was readmitted from, and the body as received. Back-dating an event, moving it to another
-- stream or position, or changing its type now breaks the chain as an altered body does.
--
-- `events.chain` says which link an event carries: 1 (body only, every event appended before
-- this migration keeps it: rewriting them now would launder whatever was done to them before)
-- or 2 (all fields). `chain_versions` records where version 2 begins, so that an event after
-- it stored with a body-only link (a downgrade, to hide an altered field) is itself a break.
-- tracker/store/chain.py computes both links the same way, for `tracker verify`.

-- No append runs while the boundary is drawn.
SELECT pg_advisory_xact_lock(128034777362279);  -- APPEND_LOCK, tracker/store/events.py

ALTER TABLE events ADD COLUMN chain smallint NOT NULL DEFAULT 1;
ALTER TABLE events ALTER COLUMN chain DROP DEFAULT;  -- every writer from now on says which

CREATE TABLE chain_versions (
    version       smallint PRIMARY KEY,
    from_position bigint NOT NULL  -- the first position that may carry this version's link
);
INSERT INTO chain_versions
SELECT 2, coalesce(max(position), 0) + 1 FROM events;

-- The link of version 2: definitions/11_tracker_link.sql (with tracker_micros, 10_); the append
-- that draws its positions first, so that each link covers its own: 12_tracker_append_kept.sql.
