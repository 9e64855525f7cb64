"""Conformance peer: LiveKit's official Python server SDK against our orchestrator.

Run by tests/api/conformance.rs. Signs webhook bodies exactly as the SDK does
(AccessToken(...).with_sha256(...)), posts them, and checks our answers; then verifies one
of our session tokens with the SDK's TokenVerifier. Exits non-zero on the first mismatch.
"""

import argparse
import base64
import datetime
import hashlib
import json
import sys
import time
import urllib.error
import urllib.request

from livekit import api


def sign(body: str, key: str, secret: str) -> str:
    digest = base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()
    return (
        api.AccessToken(key, secret)
        .with_sha256(digest)
        .with_ttl(datetime.timedelta(minutes=5))
        .to_jwt()
    )


def post(url: str, body: str, auth: str):
    req = urllib.request.Request(
        url,
        data=body.encode(),
        method="POST",
        headers={
            "Content-Type": "application/webhook+json",
            "Authorization": auth,
            "User-Agent": "LiveKit",
        },
    )
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


def expect(what, got, want):
    if got != want:
        print(f"FAIL {what}: got {got!r}, want {want!r}")
        sys.exit(1)
    print(f"ok   {what}")


def main() -> None:
    p = argparse.ArgumentParser()
    for name in ("url", "key", "secret", "room", "room-sid", "token", "identity"):
        p.add_argument(f"--{name}", required=True)
    a = p.parse_args()
    now = str(int(time.time()))

    # Bodies as LiveKit's server writes them: protojson, camelCase, int64 as strings.
    started = json.dumps({
        "event": "room_started",
        "id": "EV_py_started",
        "createdAt": now,
        "room": {"sid": a.room_sid, "name": a.room, "emptyTimeout": 300, "creationTime": now},
    })
    joined = json.dumps({
        "event": "participant_joined",
        "id": "EV_py_joined",
        "createdAt": now,
        "room": {"sid": a.room_sid, "name": a.room},
        "participant": {"sid": "PA_py", "identity": "py-guest", "state": "ACTIVE", "joinedAt": now},
    })
    for body, name in ((started, "room_started"), (joined, "participant_joined")):
        # The SDK's own receiver accepts what it signed (sanity of the peer itself).
        auth = sign(body, a.key, a.secret)
        api.WebhookReceiver(api.TokenVerifier(a.key, a.secret)).receive(body, auth)
        expect(f"{name} accepted", post(a.url, body, auth), (200, {"status": "received", "event": name}))

    auth = sign(started, a.key, a.secret)
    expect("duplicate delivery", post(a.url, started, auth), (200, {"status": "duplicate"}))

    tampered = started.replace("room_started", "room_finished")
    status, _ = post(a.url, tampered, auth)
    expect("tampered body refused", status, 401)

    forged = sign(started, a.key, "forged-secret-0123456789abcdef0123")
    status, _ = post(a.url, started, forged)
    expect("forged secret refused", status, 401)

    claims = api.TokenVerifier(a.key, a.secret).verify(a.token)
    expect("token identity", claims.identity, a.identity)
    expect("token room", claims.video.room, a.room)
    expect("token roomJoin", claims.video.room_join, True)
    expect("token canPublishData", claims.video.can_publish_data, True)


if __name__ == "__main__":
    main()
