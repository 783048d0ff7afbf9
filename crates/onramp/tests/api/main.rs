//! onramp's API tests: the real router over a real socket, a real SQLite file per test.

// The workspace denies these outside tests; this whole crate is tests and their helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod helpers;
mod smtp_sink;

mod activation;
mod admin;
mod browser;
mod claim;
mod cluster;
mod connections;
mod contracts;
mod cors;
mod dreamfactory;
mod events;
mod fast_track;
mod input;
mod invitations;
mod login;
mod ops;
mod outbox;
mod partner;
mod process;
mod schemathesis;
mod screening;
mod signup;
