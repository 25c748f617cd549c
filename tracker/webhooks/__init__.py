"""Webhooks: alert changes POSTed, signed, to their guards' URLs, after commit (issue 25).

The alert code enqueues a row in its own transaction (`outbox.enqueue`); a `Deliverer` sends it
later, at least once, in order per rollout, retrying with backoff until it gives up (a dead
letter, which `outbox.retry` brings back). `targets` decides where a webhook may go; `signing`
what a receiver checks.
"""
