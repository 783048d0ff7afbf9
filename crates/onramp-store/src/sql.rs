//! The one implementation of the storage ports, generic over the database. Every query is
//! written once with `$n` placeholders (both databases accept them, and `RETURNING` and
//! `ON CONFLICT`); what truly differs per database is the [`Dialect`]: how to connect and
//! migrate, the row-lock clause, where an instance's own database lives, a first signup (one
//! statement on PostgreSQL), and an activation (one statement on PostgreSQL, one batch on
//! SQLite; both answer through [`activation_outcome`]).
//!
//! The impls in `queries/` repeat one `where` clause (see [`SqlStore`]): Rust does not carry a
//! trait's `where` clauses over to its users, so the bounds sqlx needs for "any database" are
//! stated at each impl instead of once on `Dialect`.

use onramp_core::model::{
    ActivatedSignup, Instance, InstanceId, NewAuditEvent, NewSignup, RedeemError, UserStatus,
};
use onramp_core::ports::StoreResult;
use sqlx::{Database, Decode, Encode, Pool, Type};
use std::future::Future;

/// What differs between the databases. Implemented for `sqlx::Sqlite` (in `sqlite.rs`) and
/// `sqlx::Postgres` (in `postgres.rs`).
pub trait Dialect: Database {
    /// Where an instance's own database lives: SQLite's directory of files; PostgreSQL needs
    /// nothing (a schema in the same database).
    type Home: Send + Sync;

    /// Appended to a `SELECT` whose rows the transaction will change. SQLite needs none: its
    /// single writer serialises write transactions.
    const LOCK: &'static str;

    /// Appended to the outbox claim's inner `SELECT`, so workers on many nodes never claim the
    /// same message.
    const SKIP_LOCKED: &'static str;

    /// `sql` with the row-lock clause.
    fn locked(sql: &str) -> String {
        format!("{sql}{}", Self::LOCK)
    }

    /// How many rows a statement changed (each driver's result type has its own method).
    fn rows_affected(done: &Self::QueryResult) -> u64;

    fn migrate(pool: &Pool<Self>) -> impl Future<Output = StoreResult<()>> + Send;

    /// Create (or re-create, empty) an instance's own database and run its init SQL there;
    /// returns the reference stored for it.
    fn create_instance_database(
        store: &SqlStore<Self>,
        instance: &Instance,
        init_sql: Option<&str>,
    ) -> impl Future<Output = StoreResult<String>> + Send;

    fn drop_instance_database(
        store: &SqlStore<Self>,
        instance: &Instance,
    ) -> impl Future<Output = StoreResult<()>> + Send;

    /// A first signup of a new address (account, user, activation secret and mail) written in
    /// one statement, where the database can; `Ok(false)` when it cannot, and the signup then
    /// takes the transaction every database runs.
    fn insert_new_signup(
        pool: &Pool<Self>,
        instance: InstanceId,
        signup: &NewSignup,
    ) -> impl Future<Output = StoreResult<bool>> + Send;

    /// An activation in as few round trips as the database allows (the hot path after a
    /// signup): the secret is looked at, and only when it is live is it used, every other live
    /// activation secret of its user voided, the user activated and the audit entry written, in
    /// one transaction.
    fn activate_signup_at_once(
        pool: &Pool<Self>,
        instance: InstanceId,
        secret_hash: &str,
        now: i64,
        audit: &NewAuditEvent,
    ) -> impl Future<Output = StoreResult<Result<ActivatedSignup, RedeemError>>> + Send;
}

/// An activation's answer from its secret's row as it was before the activation: used,
/// voided or expired, else the names `activated` gives.
pub(crate) fn activation_outcome(
    expires_at: i64,
    consumed_at: Option<i64>,
    voided_at: Option<i64>,
    now: i64,
    activated: impl FnOnce() -> ActivatedSignup,
) -> Result<ActivatedSignup, RedeemError> {
    if consumed_at.is_some() {
        Err(RedeemError::AlreadyUsed)
    } else if voided_at.is_some() {
        Err(RedeemError::NotFound)
    } else if expires_at <= now {
        Err(RedeemError::Expired)
    } else {
        Ok(activated())
    }
}

/// A type both databases store and read.
pub trait Value<DB: Database>: for<'q> Encode<'q, DB> + for<'r> Decode<'r, DB> + Type<DB> + Send {}
impl<DB: Database, T> Value<DB> for T where
    T: for<'q> Encode<'q, DB> + for<'r> Decode<'r, DB> + Type<DB> + Send
{
}

/// The store on one database. The impls of the ports (one file per aggregate under `queries/`)
/// all carry this `where` clause, which is everything sqlx needs to run a query generically:
///
/// ```text
/// where
///     DB: Dialect,
///     for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
///     for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
///     usize: ColumnIndex<DB::Row>,
///     for<'q> &'q str: Encode<'q, DB> + Type<DB>,
///     i64: Value<DB>, bool: Value<DB>, String: Value<DB>, Vec<u8>: Value<DB>,
/// ```
pub struct SqlStore<DB: Dialect> {
    /// Where writes go. SQLite: one connection, so write transactions never meet
    /// `SQLITE_BUSY` on upgrade and single-use checks are serialised.
    pub(crate) writer: Pool<DB>,
    /// Where reads go. SQLite: a pool of read-only connections; PostgreSQL: the same pool.
    pub(crate) reader: Pool<DB>,
    pub(crate) home: DB::Home,
}

pub(crate) type Tx<'c, DB> = sqlx::Transaction<'c, DB>;

pub(crate) fn status(s: &str) -> UserStatus {
    UserStatus::parse(s).unwrap_or(UserStatus::Inactive)
}

/// The first free names for `base`, given the names that are taken and those to avoid.
pub(crate) fn free_candidates(
    base: &str,
    taken: &std::collections::HashSet<String>,
    avoid: &[String],
    count: usize,
) -> Vec<String> {
    (0u32..)
        .map(|n| onramp_core::instance_name::candidate(base, n))
        .filter(|name| !taken.contains(name) && !avoid.contains(name))
        .take(count)
        .collect()
}

/// A secret that may still be used, with its user.
pub(crate) struct LiveSecret {
    pub id: i64,
    pub user_key: i64,
    pub expires_at: i64,
    pub public_id: String,
    pub email: String,
}
