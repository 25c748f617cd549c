-- The outbox's queued rows are not due (tracker/store/outbox.py, "Heads and queued rows").
--
-- From this version a pending row that waits behind an earlier pending row of its ordering key
-- has next_at = 'infinity': only the head of each key (its lowest pending seq) has a real
-- next_at (due, backing off, or leased), so the claim's walk of webhook_outbox_due, which stops
-- at the first row not yet due, reads the due heads and never the rows queued behind them.
-- `enqueue` inserts a row queued when its key has a pending row already; the statement that
-- delivers a head or gives it up makes the next row of its key due; a retried dead letter goes
-- to the back of its key's queue (a new seq). No column or index changes: next_at and the
-- partial indexes of 020 serve as they are.
--
-- Backfill: the rows queued by earlier versions (due since their enqueueing) become not due.
-- Rows enqueued meanwhile by a process of an earlier version stay due behind their head; the
-- claim still sends nothing ahead of an earlier pending row of its key, so they only cost the
-- walk they always cost, until sent.
UPDATE webhook_outbox o SET next_at = 'infinity'
WHERE state = 'pending'
  AND EXISTS (SELECT FROM webhook_outbox e
              WHERE e.ordering = o.ordering AND e.state = 'pending' AND e.seq < o.seq);
