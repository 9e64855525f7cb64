//! Replicas as separate OS processes (issue #17, part 5): the release binary
//! (`target/release/june-orchestrator`, or `JUNE_BIN`) started several times on one
//! PostgreSQL schema with the in-test LiveKit double, as a Kubernetes deployment runs it.
//! The in-process replica tests (`tests/api/postgres.rs`) share one address space and one
//! runtime; these share only what real replicas share, so a crash is a real `kill -9` and a
//! rolling restart a real SIGTERM.
//!
//! `make replicas` builds the release binary and runs this suite; `make test` calls it and
//! `make unit` leaves it out (docs/TESTING.md).

mod harness;
mod limits;
mod reaper;
mod restart;
mod sessions;
mod stream;
