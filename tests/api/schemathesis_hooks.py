"""Hooks of the schemathesis run in schemathesis.rs (loaded by schemathesis.toml).

`Idempotency-Key` is a client's nonce: one key names one request, and the same key with
another body is refused (422, as the IETF draft says) by design. JSON Schema can describe a
key's characters but not that it must be fresh, so generated cases would reuse a key with
different bodies. A generated key that is well formed gets a unique suffix; a malformed one
is sent as generated. Replays and mismatches are tested in tests/api/sessions.rs.
"""

import re
import uuid

import schemathesis

HEADER = "idempotency-key"
WELL_FORMED = re.compile(r"[!-~]{1,255}")
# A dash and 32 hex digits.
SUFFIX = 33


@schemathesis.hook
def map_case(context, case):
    headers = case.headers or {}
    for name, value in list(headers.items()):
        if name.lower() == HEADER and isinstance(value, str) and WELL_FORMED.fullmatch(value):
            headers[name] = f"{value[: 255 - SUFFIX]}-{uuid.uuid4().hex}"
    return case
