//! The storage ports, one file per aggregate, each an impl for [`SqlStore`] on any [`Dialect`].
//! The SQL in them is the same on both databases.

use crate::sql::{Dialect, SqlStore, Tx, Value, status};
use crate::util::{
    app_from, db_err, domain_from, from_ts, metadata_text, outbox_from, session_from, summary_from, ts,
};
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
mod invitations;
mod managed_users;
mod outbox;
mod provisioning;
mod rate_limits;
mod sessions;
mod settings;
mod signups;
mod users;

/// The values of a query built from filters, numbered as they are added.
#[derive(Default)]
pub(crate) struct Args {
    values: Vec<Arg>,
}

enum Arg {
    Int(i64),
    Text(String),
    OptInt(Option<i64>),
    OptText(Option<String>),
}

impl Args {
    /// Add an integer; returns its placeholder.
    pub fn int(&mut self, v: i64) -> String {
        self.values.push(Arg::Int(v));
        format!("${}", self.values.len())
    }

    /// Add a text; returns its placeholder.
    pub fn text(&mut self, v: &str) -> String {
        self.values.push(Arg::Text(v.to_owned()));
        format!("${}", self.values.len())
    }

    /// Add an integer or NULL; returns its placeholder.
    pub fn opt_int(&mut self, v: Option<i64>) -> String {
        self.values.push(Arg::OptInt(v));
        format!("${}", self.values.len())
    }

    /// Add a text or NULL; returns its placeholder.
    pub fn opt_text(&mut self, v: Option<&str>) -> String {
        self.values.push(Arg::OptText(v.map(str::to_owned)));
        format!("${}", self.values.len())
    }

    pub fn bind_to<'q, DB>(
        self,
        mut query: sqlx::query::Query<'q, DB, DB::Arguments<'q>>,
    ) -> sqlx::query::Query<'q, DB, DB::Arguments<'q>>
    where
        DB: sqlx::Database,
        i64: Value<DB>,
        String: Value<DB>,
        Option<i64>: Value<DB>,
        Option<String>: Value<DB>,
    {
        for v in self.values {
            query = match v {
                Arg::Int(i) => query.bind(i),
                Arg::Text(s) => query.bind(s),
                Arg::OptInt(i) => query.bind(i),
                Arg::OptText(s) => query.bind(s),
            };
        }
        query
    }
}
