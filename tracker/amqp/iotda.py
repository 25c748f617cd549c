"""IoTDA's SASL username, built afresh for every connection.

IoTDA's AMQP access ("AMQP client access", IoTDA user guide): SASL PLAIN, the password is the
access code, the username `accessKey=${accessKey}|timestamp=${timestamp}|instanceId=${id}`,
where the timestamp is the current time in 13-digit milliseconds and must be within 5 minutes
of the platform's clock: a username kept from the first connection is refused on a reconnect an
hour later. `instanceId` is given only where the region needs it.
"""

from __future__ import annotations

SEPARATORS = "|="  # the username's own syntax: a key or id holding one would change its meaning


class BadCredential(ValueError):  # noqa: N818 - reads as "a bad credential"
    """An access key or instance id that cannot be written into the username unambiguously."""


def username(access_key: str, now_ms: int, instance_id: str | None = None) -> str:
    """The username for a connection opened at `now_ms` (milliseconds since the epoch)."""
    for name, value in (("access key", access_key), ("instance id", instance_id or "")):
        if any(char in value for char in SEPARATORS) or value != value.strip():
            raise BadCredential(f"the IoTDA {name} {value!r} holds '|', '=' or spaces")
    if not access_key:
        raise BadCredential("the IoTDA access key is empty")
    parts = [f"accessKey={access_key}", f"timestamp={now_ms:013d}"]
    if instance_id:
        parts.append(f"instanceId={instance_id}")
    return "|".join(parts)
