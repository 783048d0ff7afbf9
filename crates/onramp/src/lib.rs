//! The onramp service: configuration, wiring, the HTTP surfaces and delivery. `main.rs` only
//! parses the command line and calls `cli::run`.

pub mod app;
pub mod branding;
pub mod cli;
pub mod config;
pub mod delivery;
pub mod http;
pub mod metrics;
pub mod remote;
pub mod server;
pub mod standard_webhooks;
pub mod telemetry;
