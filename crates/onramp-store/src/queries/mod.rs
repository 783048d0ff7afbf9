//! The storage ports, one file per aggregate, each an impl for [`SqlStore`] on any [`Dialect`].
//! The SQL in them is the same on both databases.

use crate::sql::{Dialect, SqlStore, Tx, Value, status};
use crate::util::{app_from, db_err, domain_from, from_ts, outbox_from, session_from, summary_from, ts};
use async_trait::async_trait;
use onramp_core::model::*;
use onramp_core::ports::*;
use sqlx::{ColumnIndex, Encode, Executor, IntoArguments, Row, Type};
use time::{Duration, OffsetDateTime};

mod admin;
mod apps;
mod claims;
mod contracts;
mod database;
mod instances;
mod managed_users;
mod outbox;
mod provisioning;
mod rate_limits;
mod sessions;
mod settings;
mod signups;
mod users;
