"""Rollout guards at work (issue 25): what moves alerts besides deliveries, and what acts on them.

An append decides the alerts of the rollouts it moved, in its own transaction
(store/alerting.py). Beside it, in `tracker serve`:
- `Clock` reads every rollout that still has busy devices every few seconds, for what time
  alone makes true (stuck, silence) and for guards written since the rollout last moved;
- `Stopper` makes the StopBatchTask calls that firing guards owe, and records what came of each;
- tracker/webhooks/ delivers the alert changes to their guards' URLs.
"""
