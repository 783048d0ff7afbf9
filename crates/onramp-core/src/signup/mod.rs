//! The seed-004 signup workflow (`/v1/auth`): register an account and its first user, then
//! activate.

pub mod activate;
pub mod register;

use crate::common::Common;
use crate::ports::{Outbox, Signups};
use std::sync::Arc;

/// `/v1` signup: `register` writes the pending account and its activation mail, `activate`
/// redeems the mailed token.
#[derive(Clone)]
pub struct Signup {
    pub(crate) common: Common,
    pub(crate) signups: Arc<dyn Signups>,
    pub(crate) outbox: Arc<dyn Outbox>,
}
