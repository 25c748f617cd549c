"""When a message may be settled, and how: the acknowledgement is the promise.

Accepting a message tells the broker to forget it, so it is accepted only once nothing can lose
it any more: after its transaction has committed, or after a refused body is kept in `rejected`
(a poison message must not come back for ever; `tracker readmit` can take it from there).
Everything else is released, never rejected: AMQP's `rejected` makes the broker drop or
dead-letter the message, which is what `rejected` the table is for. While the database is
unavailable nothing can be kept, so every message is released and the link stops taking credit
until the database answers: the broker keeps the backlog, not our memory.

A message is released unmodified (`delivered=False`): the `modified` outcome proton sends by
default makes RabbitMQ 3.x end the session, and a message released without being processed was
not delivered in any sense that should count against it.
"""

from __future__ import annotations

from enum import Enum


class Fate(Enum):
    """What became of one message here."""

    COMMITTED = "committed"  # appended to the log, transaction committed
    REFUSED = "refused"  # refused (malformed, invalid, limits), kept in `rejected`
    UNAVAILABLE = "unavailable"  # the database could not store it, nor its refusal
    BEHIND = "behind"  # an earlier message of its stream was released: order comes first
    PAUSED = "paused"  # arrived while the database was unavailable: not even tried
    STOPPING = "stopping"  # arrived as the server stops: the next consumer takes it

    @property
    def counted_as(self) -> str:
        """Its count in /metrics: accepted (in the log), rejected (kept in `rejected`, and
        accepted on the link), or released."""
        return {Fate.COMMITTED: "accepted", Fate.REFUSED: "rejected"}.get(self, "released")


class Outcome(Enum):
    """The AMQP outcome sent for a message."""

    ACCEPTED = "accepted"
    RELEASED = "released"


def outcome(fate: Fate) -> Outcome:
    """Accepted exactly when the message is kept somewhere; released otherwise."""
    return Outcome.ACCEPTED if fate in {Fate.COMMITTED, Fate.REFUSED} else Outcome.RELEASED


def pauses(fate: Fate) -> bool:
    """Whether the link must stop taking credit after this message: the database failed."""
    return fate is Fate.UNAVAILABLE


def replenish(paused: bool, stopping: bool) -> bool:
    """Whether a settled message's credit is given back to the broker: not while the database
    is unavailable (released messages would only come straight back), nor while stopping."""
    return not paused and not stopping
