//! onramp's core: validated domain types, the use cases of signup and login, and the ports
//! (store, clock, token generator) they run on. No HTTP, SQL or SMTP here.

pub mod admin;
pub mod api_keys;
pub mod apps;
pub mod audit;
pub mod background;
pub(crate) mod cache;
pub mod claims;
pub mod clock;
pub(crate) mod common;
pub mod contract_account;
pub mod country;
pub mod email;
pub mod error;
pub mod events;
pub mod foreign_hash;
pub mod hasher;
pub mod import;
pub mod instance_name;
pub mod invitations;
pub mod language;
pub mod login;
pub mod model;
pub mod open_registration;
pub mod operator;
pub mod origin;
pub mod outbox;
pub mod partner_signup;
pub mod password;
pub mod phone;
pub mod ports;
pub mod provision;
pub mod provisioning;
pub mod screening;
pub mod seal;
pub mod service;
pub mod session;
pub mod settings;
pub mod signup;
pub mod text;
pub mod token;
pub mod username;

pub use error::{CoreError, FieldError};
pub use outbox::OutboxPayload;
pub use service::Onramp;
pub use settings::Settings;
