/**
 * The session flow through the generated client against a running orchestrator. Started by
 * tests/api/ts_client.rs, which runs the real server with the LiveKit double and a fake
 * Gemini and passes what this file needs through the environment:
 *
 *   JUNE_BASE_URL  the server            JUNE_API_KEY    a service API key (AUTH_MODE=api_key)
 *   JUNE_OWNER     who owns the session  JUNE_ROOM       the room name; the double joins
 *   JUNE_REPLY     what the fake model says                JUNE_OWNER to it once it exists
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { createJuneClient, isErrorBody, type ErrorBody, type SessionResponse } from "../src/index.js";

function env(name: string): string {
  const value = process.env[name];
  if (value === undefined || value === "") {
    throw new Error(`${name} is not set: run this through tests/api/ts_client.rs`);
  }
  return value;
}

const baseUrl = env("JUNE_BASE_URL");
const owner = env("JUNE_OWNER");
const room = env("JUNE_ROOM");
const reply = env("JUNE_REPLY");
const client = createJuneClient({ baseUrl, credential: env("JUNE_API_KEY"), timeoutMs: 15_000 });

/** The error body's code, with the compiler checking that `error` is the spec's ErrorBody. */
function codeOf(error: ErrorBody | undefined): string | undefined {
  return error?.code;
}

describe("the generated TypeScript client", () => {
  let session: SessionResponse;

  it("creates a session", async () => {
    const { data, error, response } = await client.POST("/api/sessions", {
      body: { user_id: owner, room_name: room, language: "en" },
    });
    assert.equal(response.status, 200, JSON.stringify(error));
    assert.ok(data);
    assert.equal(data.user_id, owner);
    assert.equal(data.room_name, room);
    assert.equal(data.kind, "owned");
    assert.ok(data.access_token, "a fresh session has a token to join with");
    session = data;
  });

  it("reads it back", async () => {
    const { data, response } = await client.GET("/api/sessions/{id}", {
      params: { path: { id: session.session_id } },
    });
    assert.equal(response.status, 200);
    assert.equal(data?.session_id, session.session_id);
    assert.equal(data?.room_name, room);
  });

  it("lists the owner's sessions", async () => {
    const { data, response } = await client.GET("/api/sessions", {
      params: { query: { user_id: owner, limit: 10 } },
    });
    assert.equal(response.status, 200);
    assert.deepEqual(
      data?.sessions.map((s) => s.session_id),
      [session.session_id],
    );
  });

  it("sees the owner in the room", async () => {
    const { data, response } = await client.GET("/api/sessions/{id}/participants", {
      params: { path: { id: session.session_id } },
    });
    assert.equal(response.status, 200);
    assert.deepEqual(
      data?.map((p) => p.identity),
      [owner],
    );
  });

  it("mints a guest token", async () => {
    const { data, response } = await client.POST("/api/sessions/{id}/guest-token", {
      params: { path: { id: session.session_id } },
      body: { guest_name: "TS Guest", ttl_seconds: 600 },
    });
    assert.equal(response.status, 200);
    assert.ok(data);
    assert.equal(data.room_name, room);
    assert.equal(data.guest_name, "TS Guest");
    assert.match(data.identity, /^guest-ts_guest-/);
    assert.ok(data.access_token.length > 0);
  });

  it("chats with the model and keeps the history", async () => {
    const { data, error, response } = await client.POST("/api/ai/chat", {
      body: { session_id: session.session_id, text: "Hello from TypeScript" },
    });
    assert.equal(response.status, 200, JSON.stringify(error));
    assert.equal(data?.session_id, session.session_id);
    assert.equal(data?.text, reply);

    const history = await client.GET("/api/sessions/{id}/history", {
      params: { path: { id: session.session_id } },
    });
    assert.equal(history.response.status, 200);
    assert.deepEqual(
      history.data?.history.map((h) => [h.role, h.content]),
      [
        ["user", "Hello from TypeScript"],
        ["assistant", reply],
      ],
    );
  });

  it("gets a typed 422 for a bad room name", async () => {
    const { data, error, response } = await client.POST("/api/sessions", {
      body: { user_id: owner, room_name: "not a room name!" },
    });
    assert.equal(response.status, 422);
    assert.equal(data, undefined);
    assert.equal(codeOf(error), "validation_error");
    assert.equal(error?.field, "room_name");
    assert.ok(isErrorBody(error));
  });

  it("gets a typed 401 without a credential", async () => {
    const anonymous = createJuneClient({ baseUrl });
    const { error, response } = await anonymous.GET("/api/sessions", {});
    assert.equal(response.status, 401);
    assert.equal(codeOf(error), "unauthenticated");
  });

  it("deletes the session, after which it is a typed 404", async () => {
    const deleted = await client.DELETE("/api/sessions/{id}", {
      params: { path: { id: session.session_id } },
    });
    assert.equal(deleted.response.status, 200);
    assert.equal(deleted.data?.status, "deleted");
    assert.equal(deleted.data?.session_id, session.session_id);

    const again = await client.DELETE("/api/sessions/{id}", {
      params: { path: { id: session.session_id } },
    });
    assert.equal(again.response.status, 404);
    assert.equal(codeOf(again.error), "session_not_found");

    const unknown = await client.GET("/api/sessions/{id}", {
      params: { path: { id: "00000000-0000-4000-8000-000000000000" } },
    });
    assert.equal(unknown.response.status, 404);
    assert.equal(codeOf(unknown.error), "session_not_found");
  });

  it("times out instead of hanging", async () => {
    // A fetch that never answers: the client's own timeout must abort it. (Node does not keep
    // the process alive for AbortSignal.timeout alone, as a real socket would: the interval
    // stands in for it.)
    const stuck = createJuneClient({
      baseUrl,
      timeoutMs: 50,
      fetch: (request) =>
        new Promise<Response>((_, reject) => {
          const socket = setInterval(() => {}, 1_000);
          request.signal.addEventListener("abort", () => {
            clearInterval(socket);
            reject(request.signal.reason);
          });
        }),
    });
    await assert.rejects(
      stuck.GET("/healthz", {}),
      (e: unknown) => e instanceof DOMException && e.name === "TimeoutError",
    );
  });
});
