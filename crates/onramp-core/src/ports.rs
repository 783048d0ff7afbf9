//! The ports the use cases need: storage (per aggregate, each method one transaction).

use crate::model::*;
use async_trait::async_trait;
use time::{Duration, OffsetDateTime};

/// The uniqueness rule a write broke, named from the constraint the database reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UniqueKey {
    /// `instances.name`.
    InstanceName,
    /// `users(instance_id, email_canonical)`: one user per address in an instance.
    Email,
    /// `users(instance_id, username_canonical)`.
    Username,
    /// Any other unique index (ids, secrets, a contract's unique values).
    Other,
}

impl std::fmt::Display for UniqueKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::InstanceName => "instance name",
            Self::Email => "email",
            Self::Username => "username",
            Self::Other => "another unique key",
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A unique index refused the write.
    #[error("unique violation on {0}")]
    Unique(UniqueKey),
    /// The database could not be reached or timed out.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    #[error("database error: {0}")]
    Other(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// Configuration of one app as applied at start (idempotent).
#[derive(Debug, Clone)]
pub struct AppSpec {
    pub app: App,
    pub domains: Vec<Domain>,
}

/// All of storage: one trait per aggregate, so a use case can say which it needs. A backend
/// implements each; `Store` is every one of them.
pub trait Store:
    Database
    + Instances
    + InstanceSettings
    + Apps
    + Contracts
    + Signups
    + Users
    + Sessions
    + Outbox
    + RateLimits
    + AdminTokens
    + ManagedUsers
    + AuditLog
    + Invitations
    + 'static
{
}

impl<T> Store for T where
    T: Database
        + Instances
        + InstanceSettings
        + Apps
        + Contracts
        + Signups
        + Users
        + Sessions
        + Outbox
        + RateLimits
        + AdminTokens
        + ManagedUsers
        + AuditLog
        + Invitations
        + 'static
{
}

/// The database itself: migrations, health, cluster-wide settings.
#[async_trait]
pub trait Database: Send + Sync {
    /// Apply pending migrations; refuse a database migrated by a newer onramp.
    async fn migrate(&self) -> StoreResult<()>;
    /// Is the database reachable?
    async fn ping(&self) -> StoreResult<()>;
    /// The cluster-wide value of `name`: `value` if none was stored yet (it is stored then),
    /// else the one stored first, by whichever node.
    async fn claim_setting(&self, name: &str, value: &str) -> StoreResult<String>;
}

/// Instances: provisioning (FastTrack's and the operator's), their state and signing keys.
#[async_trait]
pub trait Instances: Send + Sync {
    /// Find or create the instance `name`; `key` becomes its signing key if it has none.
    async fn ensure_instance(&self, name: &str, key: SigningKeyRecord) -> StoreResult<Instance>;
    /// The active instance `name`; a disabled one is `None`.
    async fn instance_by_name(&self, name: &str) -> StoreResult<Option<Instance>>;
    /// Create a new instance with its signing key, roles and default app, in state
    /// `provisioning`; `Err(Unique(InstanceName))` when an exact name is taken (active or not).
    async fn create_instance(&self, new: &NewInstance) -> StoreResult<Instance>;
    /// FastTrack's writes in one transaction (see `NewFastTrack`). `Err(Unique(Email))` when
    /// the email is a platform user already. Concurrent calls never get the same name.
    async fn provision_fast_track(&self, new: &NewFastTrack) -> StoreResult<Provisioned>;
    /// Provisioning is complete: the instance becomes `active` with its database recorded, and
    /// `message` (if any) is enqueued, as sent by the instance it names, and `audit` written,
    /// in the same transaction.
    async fn finish_provisioning(
        &self,
        instance: InstanceId,
        database: &str,
        message: Option<(InstanceId, &NewOutboxMessage)>,
        audit: &NewAuditEvent,
    ) -> StoreResult<()>;
    /// The dashboard user and instance of a live FastTrack claim secret; with an answer, the
    /// secret is used in the same transaction: `Confirm` makes the user `active`, `Release`
    /// releases the address (the instances it owns are disabled, with their sessions revoked;
    /// the user, its sessions and secrets are deleted).
    async fn fast_track_claim(
        &self,
        secret_hash: &str,
        answer: Option<ClaimAnswer>,
        now: OffsetDateTime,
    ) -> StoreResult<Result<FastTrackClaim, RedeemError>>;
    /// Release (as `fast_track_claim`'s `Release`) up to `limit` dashboard users still
    /// `unconfirmed` that were created before `created_before` (only the one of
    /// `email_canonical` when given); the names of the instances disabled.
    async fn release_unconfirmed_owners(
        &self,
        created_before: OffsetDateTime,
        email_canonical: Option<&str>,
        now: OffsetDateTime,
        limit: u32,
    ) -> StoreResult<Vec<String>>;
    /// Leave the instance visibly `provisioning_failed`, with why.
    async fn fail_provisioning(&self, instance: InstanceId, detail: &str) -> StoreResult<()>;
    /// Delete an instance that never became active, with every row it has and the platform
    /// user who owns it; returns whether there was one to delete.
    async fn discard_instance(&self, instance: InstanceId) -> StoreResult<bool>;
    /// Delete a disabled instance (or one whose provisioning failed) with every row it has but
    /// its audit entries, writing `audit` with it; `Ok(false)` when there is none. Any other
    /// state is an error: an active instance is disabled first.
    async fn delete_instance(&self, instance: InstanceId, audit: &NewAuditEvent) -> StoreResult<bool>;
    /// Create the instance's own database (a SQLite file, a PostgreSQL schema), running
    /// `init_sql` in it; an existing one is replaced. Returns where it is.
    async fn create_instance_database(
        &self,
        instance: &Instance,
        init_sql: Option<&str>,
    ) -> StoreResult<String>;
    /// Drop the instance's own database, if it exists.
    async fn drop_instance_database(&self, instance: &Instance) -> StoreResult<()>;
    async fn list_instances(&self) -> StoreResult<Vec<InstanceSummary>>;
    async fn instance_summary(&self, name: &str) -> StoreResult<Option<InstanceSummary>>;
    /// Enable or disable an active or disabled instance; returns whether there was one (an
    /// instance being provisioned is neither).
    async fn set_instance_active(
        &self,
        name: &str,
        active: bool,
        audit: Option<&NewAuditEvent>,
    ) -> StoreResult<bool>;
    async fn signing_keys(&self, instance: InstanceId) -> StoreResult<Vec<SigningKeyRecord>>;
}

/// An instance's user-service settings and roles (DreamFactory's user service).
#[async_trait]
pub trait InstanceSettings: Send + Sync {
    async fn instance_settings(&self, instance: InstanceId) -> StoreResult<UserServiceSettings>;
    /// With the audit entry of the operator's change, when it is one (not the configuration's).
    async fn set_instance_settings(
        &self,
        instance: InstanceId,
        settings: &UserServiceSettings,
        audit: Option<&NewAuditEvent>,
    ) -> StoreResult<()>;
    /// Create the roles that do not exist yet.
    async fn ensure_roles(
        &self,
        instance: InstanceId,
        roles: &[RoleSpec],
        now: OffsetDateTime,
    ) -> StoreResult<()>;
}

/// Apps: their configuration, signup domains, browser origins and API keys.
#[async_trait]
pub trait Apps: Send + Sync {
    /// Create or update an app and replace its domains, in one transaction.
    async fn apply_app(&self, instance: InstanceId, spec: &AppSpec) -> StoreResult<()>;
    async fn app(&self, instance: InstanceId, app_id: &str) -> StoreResult<Option<App>>;
    async fn app_domains(&self, instance: InstanceId, app_id: &str) -> StoreResult<Vec<Domain>>;
    /// The domain `domain_id` of any app of the instance, with its app.
    async fn signup_domain(
        &self,
        instance: InstanceId,
        domain_id: &str,
    ) -> StoreResult<Option<(App, Domain)>>;
    /// With its audit entry, when an operator made it (config keys have none).
    async fn create_api_key(
        &self,
        instance: InstanceId,
        key: &NewApiKey,
        audit: Option<&NewAuditEvent>,
    ) -> StoreResult<()>;
    /// The key with this hash in this instance (revoked ones too).
    async fn api_key_by_hash(
        &self,
        instance: InstanceId,
        secret_hash: &str,
    ) -> StoreResult<Option<ApiKeyRecord>>;
    async fn list_api_keys(&self, instance: InstanceId) -> StoreResult<Vec<ApiKeyRecord>>;
    /// Returns whether a live key was revoked.
    async fn revoke_api_key(
        &self,
        instance: InstanceId,
        id: &str,
        now: OffsetDateTime,
        audit: &NewAuditEvent,
    ) -> StoreResult<bool>;
    /// Make the app's configuration-file keys exactly `keys`: add the missing, revoke the
    /// config keys no longer listed (CLI keys are left alone).
    async fn sync_config_api_keys(
        &self,
        instance: InstanceId,
        app_id: &str,
        keys: &[NewApiKey],
        now: OffsetDateTime,
    ) -> StoreResult<()>;
    async fn app_settings(&self, instance: InstanceId, app_id: &str) -> StoreResult<AppSettings>;
    /// Every app's browser access (signup URL, allowed origins), for CORS.
    async fn app_origins(&self, instance: InstanceId) -> StoreResult<Vec<AppOrigins>>;
    async fn set_app_settings(
        &self,
        instance: InstanceId,
        app_id: &str,
        settings: &AppSettings,
        audit: Option<&NewAuditEvent>,
    ) -> StoreResult<()>;
}

/// dialogportal contracts and the accounts made under them.
#[async_trait]
pub trait Contracts: Send + Sync {
    /// Create or replace a contract of an app.
    async fn put_contract(
        &self,
        instance: InstanceId,
        app_id: &str,
        contract: &Contract,
        audit: Option<&NewAuditEvent>,
    ) -> StoreResult<()>;
    async fn contract(&self, instance: InstanceId, app_id: &str, id: &str) -> StoreResult<Option<Contract>>;
    async fn contracts(&self, instance: InstanceId, app_id: &str) -> StoreResult<Vec<Contract>>;
    /// Create a contract account unless one holds a unique value already (then `Exists`).
    async fn create_contract_account(
        &self,
        instance: InstanceId,
        account: &NewContractAccount,
    ) -> StoreResult<ContractOutcome>;
    async fn contract_account(
        &self,
        instance: InstanceId,
        dp_key: i64,
    ) -> StoreResult<Option<ContractAccount>>;
    /// Check a texted code: the right one activates the account; a wrong one counts, and the
    /// code dies after `max_attempts`.
    async fn verify_sms(
        &self,
        instance: InstanceId,
        dp_key: i64,
        code_hash: &str,
        now: OffsetDateTime,
        max_attempts: u32,
        audit: &NewAuditEvent,
    ) -> StoreResult<Result<(), SmsCodeError>>;
    /// Replace the live SMS code with a new one that inherits the failed attempts; `Ok(false)`
    /// (and nothing written) when those are used up or the account is not pending.
    async fn resend_sms(
        &self,
        instance: InstanceId,
        dp_key: i64,
        verification: &NewVerification,
        message: &NewOutboxMessage,
        max_attempts: u32,
    ) -> StoreResult<bool>;
}

/// Self-service signups: `/v1` signup and activation, DreamFactory registration and its codes.
#[async_trait]
pub trait Signups: Send + Sync {
    /// Account + pending user + activation secret + outbox message, atomically. An email that
    /// exists already is never duplicated (a unique index on the canonical email decides).
    /// `Err(Unique(Username))` when the username is taken by someone else.
    async fn create_signup(&self, instance: InstanceId, signup: &NewSignup) -> StoreResult<SignupOutcome>;
    /// Redeem an activation secret once: consume it, activate the user, void the user's other
    /// activation secrets.
    async fn activate_signup(
        &self,
        instance: InstanceId,
        secret_hash: &str,
        now: OffsetDateTime,
        audit: &NewAuditEvent,
    ) -> StoreResult<Result<ActivatedSignup, RedeemError>>;
    /// A self-registration in one transaction; `Err(Unique(Username))` when the username
    /// belongs to someone else.
    async fn register_user(
        &self,
        instance: InstanceId,
        registration: &NewRegistration,
    ) -> StoreResult<RegistrationOutcome>;
    /// Redeem an emailed code: on a match the user is active with the new password, every
    /// other secret and every session of theirs is void. A wrong code counts against the
    /// user's live codes. Concurrent redemptions of one code: one succeeds.
    async fn redeem_code(
        &self,
        instance: InstanceId,
        redemption: &CodeRedemption,
    ) -> StoreResult<Result<(i64, String), RedeemError>>;
}

/// Users as logins and pages see them, and their single-use secrets.
#[async_trait]
pub trait Users: Send + Sync {
    async fn user_by_email(
        &self,
        instance: InstanceId,
        email_canonical: &str,
    ) -> StoreResult<Option<UserView>>;
    /// Add a secret for a user and the mail that carries it, together.
    async fn issue_secret(
        &self,
        instance: InstanceId,
        user_key: i64,
        verification: &NewVerification,
        message: &NewOutboxMessage,
    ) -> StoreResult<()>;
    /// Redeem a single-use secret of `purpose`: consume it and return its user's key and
    /// public id. A secret is redeemed at most once, however many callers race for it.
    async fn redeem_secret(
        &self,
        instance: InstanceId,
        purpose: Purpose,
        secret_hash: &str,
        now: OffsetDateTime,
    ) -> StoreResult<Result<(i64, String), RedeemError>>;
    async fn user_view(&self, instance: InstanceId, user_key: i64) -> StoreResult<Option<UserView>>;
    async fn login_record(
        &self,
        instance: InstanceId,
        lookup: &LoginLookup,
    ) -> StoreResult<Option<LoginRecord>>;
    async fn set_password_hash(&self, instance: InstanceId, user_key: i64, hash: &str) -> StoreResult<()>;
    /// Insert many users at once, in one transaction, all created (and, when active, activated)
    /// at `created_at`: a bulk import, the benchmark's fill. An address or username that is
    /// taken fails the whole batch with `Unique`. Returns how many were inserted.
    async fn insert_users(
        &self,
        instance: InstanceId,
        users: &[NewUser],
        created_at: OffsetDateTime,
    ) -> StoreResult<u64>;
}

/// Sessions.
#[async_trait]
pub trait Sessions: Send + Sync {
    async fn create_session(
        &self,
        instance: InstanceId,
        session: &SessionRecord,
        audit: &NewAuditEvent,
    ) -> StoreResult<()>;
    async fn session(&self, instance: InstanceId, id: &str) -> StoreResult<Option<SessionRecord>>;
    /// Returns whether a live session was revoked by this call.
    async fn revoke_session(
        &self,
        instance: InstanceId,
        id: &str,
        now: OffsetDateTime,
        audit: &NewAuditEvent,
    ) -> StoreResult<bool>;
}

/// The outbox: messages written with the change that caused them, delivered by the worker.
#[async_trait]
pub trait Outbox: Send + Sync {
    /// Write a message on its own (when no other change goes with it).
    async fn enqueue(&self, instance: InstanceId, message: &NewOutboxMessage) -> StoreResult<()>;
    /// Lease up to `limit` due messages for `lease`; a crashed worker's lease runs out and the
    /// messages become due again.
    async fn claim_outbox(
        &self,
        now: OffsetDateTime,
        lease: Duration,
        limit: u32,
    ) -> StoreResult<Vec<OutboxMessage>>;
    /// Delivered: keep the row for the record, drop its sealed payload.
    async fn outbox_delivered(&self, id: i64, now: OffsetDateTime) -> StoreResult<()>;
    /// Failed: try again at `retry_at`, or dead-letter when `None`.
    async fn outbox_failed(
        &self,
        id: i64,
        attempts: u32,
        retry_at: Option<OffsetDateTime>,
        error: &str,
    ) -> StoreResult<()>;
    async fn outbox_counts(&self) -> StoreResult<OutboxCounts>;
    /// The newest messages waiting or dead whose last attempt failed, with that failure.
    async fn outbox_failures(&self, limit: u32) -> StoreResult<Vec<crate::model::OutboxFailure>>;
    /// Give every dead-lettered message (whose payload is still there) a fresh start, due at
    /// `now`; returns how many. With `instance`, only that instance's.
    async fn requeue_dead_outbox(
        &self,
        instance: Option<InstanceId>,
        now: OffsetDateTime,
        audit: &NewAuditEvent,
    ) -> StoreResult<u64>;
    /// Messages newest first, without their payloads.
    async fn list_outbox(&self, filter: &OutboxFilter) -> StoreResult<Page<OutboxEntry>>;
    async fn outbox_entry(&self, id: i64) -> StoreResult<Option<(InstanceId, OutboxEntry)>>;
    /// Make one pending or dead message (whose payload is still there) due at `now` with its
    /// attempts reset; returns whether there was one.
    async fn retry_outbox(&self, id: i64, now: OffsetDateTime, audit: &NewAuditEvent) -> StoreResult<bool>;
}

/// Fixed-window counters shared by every node.
#[async_trait]
pub trait RateLimits: Send + Sync {
    /// Count one hit on `key` in the window that started at `window_start`; returns the hits
    /// so far, including this one. Atomic under concurrency. Expired windows are pruned.
    async fn rate_limit_hit(
        &self,
        key: &str,
        window_start: OffsetDateTime,
        now: OffsetDateTime,
    ) -> StoreResult<u32>;
}

/// Admin tokens: who may call the admin API, and what they may reach.
#[async_trait]
pub trait AdminTokens: Send + Sync {
    async fn create_admin_token(&self, token: &NewAdminToken, audit: &NewAuditEvent) -> StoreResult<()>;
    /// The token with this hash (revoked ones too).
    async fn admin_token_by_hash(&self, secret_hash: &str) -> StoreResult<Option<AdminTokenRecord>>;
    async fn list_admin_tokens(&self) -> StoreResult<Vec<AdminTokenRecord>>;
    /// Returns whether a live token was revoked.
    async fn revoke_admin_token(
        &self,
        id: &str,
        now: OffsetDateTime,
        audit: &NewAuditEvent,
    ) -> StoreResult<bool>;
}

/// What an operator does to users besides what they do themselves. Every change writes its
/// audit entry in the same transaction.
#[async_trait]
pub trait ManagedUsers: Send + Sync {
    async fn find_users(&self, instance: InstanceId, filter: &UserFilter) -> StoreResult<Page<UserRecord>>;
    /// A user by public id; `now` decides which sessions are live.
    async fn user_record(
        &self,
        instance: InstanceId,
        public_id: &str,
        now: OffsetDateTime,
    ) -> StoreResult<Option<UserRecord>>;
    /// Users in the order they were created, after the one with key `after` (erased ones left
    /// out), for an export.
    async fn users_after(
        &self,
        instance: InstanceId,
        after: i64,
        limit: u32,
        now: OffsetDateTime,
    ) -> StoreResult<Vec<UserRecord>>;
    /// Disable (status `inactive`; sessions revoked, live secrets voided) or enable (`active`
    /// when it ever was, else `pending`) a user; returns whether the status changed.
    async fn set_user_enabled(
        &self,
        instance: InstanceId,
        user_key: i64,
        enabled: bool,
        audit: &NewAuditEvent,
    ) -> StoreResult<bool>;
    /// Revoke every live session of a user; returns how many.
    async fn revoke_user_sessions(
        &self,
        instance: InstanceId,
        user_key: i64,
        audit: &NewAuditEvent,
    ) -> StoreResult<u64>;
    /// A fresh secret and its message for a user, the user's live secrets of that purpose
    /// voided; see `Reissue`.
    async fn reissue_secret(&self, instance: InstanceId, user_key: i64, reissue: &Reissue)
    -> StoreResult<()>;
    /// Import users, each created unless its address is a user already (`Duplicate`) or
    /// another unique rule refuses it; one transaction. Each created user gets a copy of
    /// `audit` naming them.
    async fn import_users(
        &self,
        instance: InstanceId,
        users: &[ImportedUser],
        audit: &NewAuditEvent,
    ) -> StoreResult<Vec<ImportOutcome>>;
    /// Erase a user's personal data: the row stays as a `deleted` tombstone under its public
    /// id; sessions, secrets, roles, contract values and undelivered messages to its addresses
    /// go. Returns whether there was a user to erase.
    async fn erase_user(
        &self,
        instance: InstanceId,
        user_key: i64,
        audit: &NewAuditEvent,
    ) -> StoreResult<bool>;
}

/// The audit log.
/// Invitations of an instance.
#[async_trait]
pub trait Invitations: Send + Sync {
    /// Store `new` and enqueue its mail; every earlier live invitation of the address to the
    /// same app is revoked in the same transaction.
    async fn create_invitation(
        &self,
        instance: InstanceId,
        new: &NewInvitation,
    ) -> StoreResult<InvitationRecord>;
    async fn invitations(
        &self,
        instance: InstanceId,
        filter: &InvitationFilter,
    ) -> StoreResult<Page<InvitationRecord>>;
    async fn invitation(
        &self,
        instance: InstanceId,
        public_id: &str,
    ) -> StoreResult<Option<InvitationRecord>>;
    /// The invitation a secret names, whatever its state.
    async fn invitation_by_secret(
        &self,
        instance: InstanceId,
        secret_hash: &str,
    ) -> StoreResult<Option<InvitationRecord>>;
    /// A new secret and mail for a live invitation (the old secret is void); `false` when it
    /// is not live.
    async fn renew_invitation(
        &self,
        instance: InstanceId,
        public_id: &str,
        secret_hash: &str,
        expires_at: OffsetDateTime,
        message: &NewOutboxMessage,
        audit: &NewAuditEvent,
    ) -> StoreResult<bool>;
    /// Revoke a live invitation; `false` when it is not live.
    async fn revoke_invitation(
        &self,
        instance: InstanceId,
        public_id: &str,
        now: OffsetDateTime,
        audit: &NewAuditEvent,
    ) -> StoreResult<bool>;
    /// Whether a live invitation of `email_canonical` exists (to `app_id`, when named).
    async fn has_live_invitation(
        &self,
        instance: InstanceId,
        email_canonical: &str,
        app_id: Option<&str>,
        now: OffsetDateTime,
    ) -> StoreResult<bool>;
    /// Create the user of a live invitation, with its role, and mark it accepted, in one
    /// transaction.
    async fn accept_invitation(
        &self,
        instance: InstanceId,
        acceptance: &Acceptance,
    ) -> StoreResult<Result<(i64, InvitationRecord), AcceptError>>;
}

#[async_trait]
pub trait AuditLog: Send + Sync {
    /// Record an event that goes with no other write (a failed login).
    async fn record_audit(&self, event: &NewAuditEvent) -> StoreResult<()>;
    async fn audit_events(&self, filter: &AuditFilter) -> StoreResult<Page<AuditEvent>>;
    /// Delete up to `limit` entries older than `before`; returns how many.
    async fn prune_audit(&self, before: OffsetDateTime, limit: u32) -> StoreResult<u64>;
    /// Up to `limit` entries marked to be published, oldest first.
    async fn unpublished_events(&self, limit: u32) -> StoreResult<Vec<UnpublishedEvent>>;
    /// Clear entry `id`'s mark and enqueue `messages`, in one transaction; `false` (and
    /// nothing written) when another node did it first.
    async fn publish_event(&self, id: i64, messages: &[(InstanceId, NewOutboxMessage)]) -> StoreResult<bool>;
}
