"""Huawei Cloud's AK/SK request signatures, checked the way the API gateway in front of IoTDA
checks them: the canonical request rebuilt from what arrived, signed again with the secret key,
compared. Written from huaweicloudsdkcore's signer (3.1.219, `signer/signer.py`, `hkdf.py`), not
by calling it, so that a test passing here says the SDK and this reading agree.

Two algorithms reach IoTDA:

- `SDK-HMAC-SHA256 Access=AK, SignedHeaders=a;b, Signature=hex`: HMAC-SHA256 under the SK. What
  the SDK sends by default, and what the shared endpoints (`iotda.<region>.myhuaweicloud.com`)
  accept.
- `V11-HMAC-SHA256 Credential=AK/YYYYMMDD/<region>/iotdm, SignedHeaders=…, Signature=hex`: the
  key is first derived from AK and SK with HKDF-SHA256 over that scope. What an instance's own
  endpoint (`<id>.st1.iotda-app.<region>.myhuaweicloud.com`) demands; the SDK sends it only when
  the credentials carry a derived predicate and the client a region.

The string to sign is `ALGORITHM\\nX-Sdk-Date\\n[scope\\n]hex(sha256(canonical request))`, the
canonical request `METHOD\\n/path/\\nsorted&encoded=query\\nname:value\\n…\\n\\nsigned;names\\n
hex(sha256(body))`. The gateway refuses an X-Sdk-Date more than 15 minutes from its clock.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping
from datetime import datetime, timedelta
from urllib.parse import parse_qsl, quote, unquote

STANDARD, DERIVED = "SDK-HMAC-SHA256", "V11-HMAC-SHA256"
DATE_FORMAT = "%Y%m%dT%H%M%SZ"
MAX_SKEW = timedelta(minutes=15)
DERIVED_SERVICE = "iotdm"  # IoTDAClient.new_builder()'s derived auth service name
_EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
_AUTHORIZATION = re.compile(
    r"(?P<algorithm>SDK-HMAC-SHA256|V11-HMAC-SHA256) "
    r"(?:Access=(?P<access>[^,/ ]+)|Credential=(?P<credential>[^,/ ]+)/(?P<scope>[^, ]+)), "
    r"SignedHeaders=(?P<signed>[a-z0-9;-]+), Signature=(?P<signature>[0-9a-f]{64})"
)


class Refused(Exception):  # noqa: N818 - a verdict, not a bug
    """Why a request's signature does not hold."""


def verify(
    *,
    method: str,
    raw_path: str,
    raw_query: str,
    headers: Mapping[str, str],  # case-insensitive, as aiohttp's
    body: bytes,
    secrets: Mapping[str, str],  # AK → SK
    now: datetime,
    algorithms: tuple[str, ...] = (STANDARD, DERIVED),
) -> tuple[str, str]:
    """The (algorithm, AK) of a well-signed request; raises Refused, with the reason, otherwise."""
    found = _AUTHORIZATION.fullmatch(headers.get("Authorization", ""))
    if not found:
        raise Refused("no Authorization header of a known form")
    algorithm, signed = found["algorithm"], found["signed"].split(";")
    if algorithm not in algorithms:
        raise Refused(f"{algorithm} is not accepted at this endpoint")
    access = found["access"] or found["credential"]
    if access not in secrets:
        raise Refused(f"unknown AK {access}")
    stamp = _checked_date(headers, signed, now)
    canonical = _canonical_request(method, raw_path, raw_query, headers, signed, body)
    digest = hashlib.sha256(canonical.encode()).hexdigest()
    if algorithm == STANDARD:
        key = secrets[access].encode()
        to_sign = f"{STANDARD}\n{stamp}\n{digest}"
    else:
        scope = found["scope"]
        parts = scope.split("/")  # date/region/service
        if len(parts) != 3 or parts[0] != stamp[:8] or parts[2] != DERIVED_SERVICE:
            raise Refused(f"derived scope {scope!r} does not match the date or service")
        key = derived_key(access, secrets[access], scope).encode()
        to_sign = f"{DERIVED}\n{stamp}\n{scope}\n{digest}"
    expected = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, found["signature"]):
        raise Refused("signature mismatch")
    return algorithm, access


def derived_key(access_key: str, secret_key: str, scope: str) -> str:
    """HKDF-SHA256 (RFC 5869) with the AK as salt and the SK as input key, one 32-byte block of
    output for `scope`, as hex: the SDK then signs with these hex characters as the key."""
    prk = hmac.new(access_key.encode(), secret_key.encode(), hashlib.sha256).digest()
    return hmac.new(prk, scope.encode() + b"\x01", hashlib.sha256).hexdigest()


def _checked_date(headers: Mapping[str, str], signed: list[str], now: datetime) -> str:
    if "x-sdk-date" not in signed or "host" not in signed:
        raise Refused("X-Sdk-Date and Host must be signed")
    stamp = headers.get("X-Sdk-Date", "")
    try:
        when = datetime.strptime(stamp, DATE_FORMAT).replace(tzinfo=now.tzinfo)
    except ValueError:
        raise Refused(f"X-Sdk-Date {stamp!r} is not {DATE_FORMAT}") from None
    if abs(now - when) > MAX_SKEW:
        raise Refused(f"X-Sdk-Date {stamp} is more than 15 minutes from {now:{DATE_FORMAT}}")
    return stamp


def _canonical_request(
    method: str,
    raw_path: str,
    raw_query: str,
    headers: Mapping[str, str],
    signed: list[str],
    body: bytes,
) -> str:
    path = "/".join(quote(part, safe="~") for part in unquote(raw_path).split("/"))
    path = path if path.endswith("/") else path + "/"
    pairs = sorted(parse_qsl(raw_query, keep_blank_values=True))
    query = "&".join(f"{quote(key, safe='~')}={quote(value, safe='~')}" for key, value in pairs)
    missing = [name for name in signed if name not in headers]
    if missing:
        raise Refused(f"signed header(s) {', '.join(missing)} absent")
    lines = "".join(f"{name}:{headers[name].strip()}\n" for name in signed)
    payload = headers.get("X-Sdk-Content-Sha256") if body else None
    payload = payload or (hashlib.sha256(body).hexdigest() if body else _EMPTY_SHA256)
    return f"{method.upper()}\n{path}\n{query}\n{lines}\n{';'.join(signed)}\n{payload}"
