//! End-to-end tests: the real server on a random port, a temp SQLite file, the LiveKit
//! double, driven over HTTP.

mod adoption;
mod ai;
mod clients;
mod clients_compat;
mod conformance;
mod dashboards;
mod drain;
mod hardening;
mod helpers;
mod legacy;
mod limits;
mod operations;
mod postgres;
mod rust_client;
mod schemathesis;
mod security;
mod sessions;
mod stream;
mod ts_client;
mod turns;
mod voice;
mod webhooks;
