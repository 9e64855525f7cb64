/**
 * The June Orchestrator client: openapi-fetch over the types openapi-typescript generated from
 * openapi/openapi.json (src/schema.d.ts, rewritten by `make openapi`). This file only adds the
 * plumbing every caller needs — base URL, the bearer credential and a per-request timeout — so
 * every path, body and answer stays typed by the spec and nothing here can drift from it.
 */
import createClient, { type Client, type Middleware } from "openapi-fetch";

import type { components, operations, paths } from "./schema.js";

export type { components, operations, paths };

/** The error body of every non-2xx answer: `detail` for people, `code` for programs. */
export type ErrorBody = components["schemas"]["ErrorBody"];
export type CreateSessionRequest = components["schemas"]["CreateSessionRequest"];
export type SessionResponse = components["schemas"]["SessionResponse"];
export type SessionSummary = components["schemas"]["SessionSummary"];
export type SessionList = components["schemas"]["SessionList"];
export type SessionDeleted = components["schemas"]["SessionDeleted"];
export type GuestTokenRequest = components["schemas"]["GuestTokenRequest"];
export type GuestTokenResponse = components["schemas"]["GuestTokenResponse"];
export type ParticipantDto = components["schemas"]["ParticipantDto"];
export type HistoryResponse = components["schemas"]["HistoryResponse"];
export type ChatRequest = components["schemas"]["ChatRequestDto"];
export type ChatResponse = components["schemas"]["ChatResponse"];

/**
 * The typed client: `client.GET("/api/sessions/{id}", { params: { path: { id } } })`. Answers are
 * typed as their JSON form; `/api/ai/chat` can also stream Server-Sent Events (ask with
 * `Accept: text/event-stream` and `parseAs: "stream"`), which this typing leaves out.
 */
export type JuneClient = Client<paths, "application/json">;

/** Options of {@link createJuneClient}. */
export interface JuneClientOptions {
  /** Where the orchestrator listens, e.g. `https://june.example.com` (no trailing path). */
  baseUrl: string;
  /**
   * An API key (`AUTH_MODE=api_key`) or an OIDC access token, sent as `Authorization: Bearer`.
   * Leave it out for `AUTH_MODE=none`. A function is called per request, so a token that
   * refreshes can be handed in once.
   */
  credential?: string | (() => string | Promise<string>);
  /**
   * Abort a request (and its body) after this many milliseconds; 10 000 by default. A chat turn
   * waits for the model, so callers of `/api/ai/chat` may want more.
   */
  timeoutMs?: number;
  /** The `fetch` to use (tests, or a runtime without a global one). */
  fetch?: (request: Request) => Promise<Response>;
}

/** Ten seconds: longer than the server's own upstream timeouts, so its 502/504 arrive first. */
export const DEFAULT_TIMEOUT_MS = 10_000;

/** A client for one orchestrator. */
export function createJuneClient(options: JuneClientOptions): JuneClient {
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) {
    throw new RangeError(`timeoutMs must be a positive number, not ${timeoutMs}`);
  }
  const base = options.fetch ?? ((request: Request) => globalThis.fetch(request));
  const client = createClient<paths, "application/json">({
    baseUrl: options.baseUrl.replace(/\/+$/, ""),
    // The caller's own signal still aborts; the timeout aborts too.
    fetch: (request: Request) =>
      base(
        new Request(request, {
          signal: AbortSignal.any([request.signal, AbortSignal.timeout(timeoutMs)]),
        }),
      ),
  });
  const credential = options.credential;
  if (credential !== undefined) {
    const auth: Middleware = {
      async onRequest({ request }) {
        const value = typeof credential === "function" ? await credential() : credential;
        request.headers.set("Authorization", `Bearer ${value}`);
        return request;
      },
    };
    client.use(auth);
  }
  return client;
}

/** True when `value` has the shape of the spec's error body (for `catch` paths and logs). */
export function isErrorBody(value: unknown): value is ErrorBody {
  return (
    typeof value === "object" &&
    value !== null &&
    typeof (value as Record<string, unknown>).code === "string" &&
    typeof (value as Record<string, unknown>).detail === "string"
  );
}
