//! The seed-004 signup workflow: register an account and its first user, then activate.

pub mod activate;
pub mod register;
