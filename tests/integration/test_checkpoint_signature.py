"""`tracker verify --against FILE` with a malformed `signature`: one clear line and exit 1, as
for a signature that does not match, never a traceback (compare_digest raised TypeError on a
number, null or non-ASCII text)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.integration.test_checkpoint import STATES, append, signed, sw

MALFORMED_LINE = (
    "the checkpoint's signature is malformed (not 64 hex digits, as `tracker checkpoint` "
    "writes it): it was altered"
)
MALFORMED = [12345, None, ["ab"], {"hex": "ab"}, "é" * 64, "ä", "zz", "a" * 63, "A" * 64, ""]


async def test_a_malformed_signature_fails_verification_in_one_line(
    database_url: str, tmp_path: Path
) -> None:
    await append(database_url, [sw("dev-a", state) for state in STATES])
    taken = signed(database_url, "checkpoint")
    assert taken.returncode == 0, taken.stderr
    statement = json.loads(taken.stdout)
    checkpoint = tmp_path / "checkpoint.json"

    altered = statement | {"signature": "0" * 64}  # well formed, wrong: the reference case
    checkpoint.write_text(json.dumps(altered))
    reference = signed(database_url, "verify", "--against", str(checkpoint))
    assert reference.returncode == 1
    assert "checkpoint: the checkpoint's signature does not match" in reference.stdout

    for signature in MALFORMED:
        checkpoint.write_text(json.dumps(statement | {"signature": signature}))
        done = signed(database_url, "verify", "--against", str(checkpoint))
        said = [line for line in done.stdout.splitlines() if line.startswith("checkpoint: ")]
        assert (done.returncode, "Traceback" in done.stderr) == (1, False), (signature, done)
        assert said == [f"checkpoint: {MALFORMED_LINE}"], (signature, done.stdout)
