"""When a message may be settled, and how: the acknowledgement is the promise.

Accepting a message tells the broker to forget it, so it is accepted only once nothing can lose
it any more: after its transaction has committed, or after a refused body is kept in `rejected`
(a poison message must not come back for ever; `tracker readmit` can take it from there). AMQP's
`rejected` outcome is never sent: it makes the broker drop or dead-letter the message, which is
what `rejected` the table is for.

Everything else is left unsettled. While the database is unavailable a message is parked, held
here unsettled with the others that arrive meanwhile, and taken up again, in the order they
came, once the database answers. No credit is given back for a parked message, so the link's
window fills and the broker stops sending: the backlog stays in the queue, and memory holds one
window at most. Releasing them instead would not stop the flow: RabbitMQ hands a released
message straight back while the link has credit. Whatever is unsettled when a connection ends
(the server stops, crashes, or the connection drops), the broker delivers again.
"""

from __future__ import annotations

from enum import Enum


class Fate(Enum):
    """What became of one message here."""

    COMMITTED = "committed"  # appended to the log, transaction committed
    REFUSED = "refused"  # refused (malformed, invalid, limits), kept in `rejected`
    PARKED = "parked"  # the database is unavailable: held unsettled until it answers

    @property
    def counted_as(self) -> str | None:
        """Its count in /metrics: accepted (in the log) or rejected (kept in `rejected`, and
        accepted on the link). A parked message counts when it is settled at last, or, if its
        connection ends first, among the `released` (the broker delivers it again)."""
        return {Fate.COMMITTED: "accepted", Fate.REFUSED: "rejected"}.get(self)


def settles(fate: Fate) -> bool:
    """Whether the message is accepted now: exactly when it is kept somewhere."""
    return fate is not Fate.PARKED


def parks_the_next(ahead: Fate) -> bool:
    """Whether a message must be parked because the one before it in its stream was: the
    messages of a stream are applied in the order the queue gave them."""
    return ahead is Fate.PARKED


def replenish(stopping: bool) -> bool:
    """Whether a settled message's credit is given back to the broker: not once the server is
    stopping (what arrives then stays unsettled and goes back to the queue at close)."""
    return not stopping
