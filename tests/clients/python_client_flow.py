"""Drives a running orchestrator with the Python client generated from openapi/openapi.json
(openapi-python-client). Run by tests/api/clients.rs; exits non-zero on the first mismatch.

    python python_client_flow.py CLIENT_DIR BASE_URL OWNER_IDENTITY ROOM_NAME
"""

import sys

sys.path.insert(0, sys.argv[1])

from june_orchestrator_client import Client  # noqa: E402
from june_orchestrator_client.api.sessions import (  # noqa: E402
    create_guest_token,
    create_session,
    delete_session,
    get_session,
    list_participants,
    list_sessions,
)
from june_orchestrator_client.models import (  # noqa: E402
    CreateSessionRequest,
    ErrorBody,
    GuestTokenRequest,
    SessionResponse,
)


def expect(what, got, want):
    if got != want:
        print(f"FAIL {what}: got {got!r}, want {want!r}")
        sys.exit(1)
    print(f"ok   {what}")


def main():
    client = Client(base_url=sys.argv[2])

    created = create_session.sync_detailed(
        client=client,
        body=CreateSessionRequest(user_id=sys.argv[3], room_name=sys.argv[4], language="en"),
    )
    expect("create: status", created.status_code, 200)
    session = created.parsed
    expect("create: typed response", isinstance(session, SessionResponse), True)
    expect("create: has a token", bool(session.access_token), True)

    read = get_session.sync(client=client, id=session.session_id)
    expect("get: same room", read.room_name, session.room_name)

    listed = list_sessions.sync(client=client, user_id=sys.argv[3])
    expect("list: one session", [s.session_id for s in listed.sessions], [session.session_id])

    people = list_participants.sync(client=client, id=session.session_id)
    expect("participants: the owner is in the room", [p.identity for p in people], [sys.argv[3]])

    guest = create_guest_token.sync(
        client=client, id=session.session_id, body=GuestTokenRequest(guest_name="Py Guest")
    )
    expect("guest: identity prefix", guest.identity.startswith("guest-py_guest-"), True)

    deleted = delete_session.sync(client=client, id=session.session_id)
    expect("delete: status", deleted.status, "deleted")
    again = delete_session.sync_detailed(client=client, id=session.session_id)
    expect("delete again: 404", again.status_code, 404)
    expect("delete again: typed error", isinstance(again.parsed, ErrorBody), True)


if __name__ == "__main__":
    main()
