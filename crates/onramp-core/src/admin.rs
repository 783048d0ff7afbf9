//! The control plane's use cases (issue 13): who may call the admin API (admin tokens and their
//! scope), and what an operator does to users, the outbox and the audit log. The admin API, the
//! console and the CLI all call these; each change writes its audit entry in the same
//! transaction.

use crate::common::Common;
use crate::contract_account::ContractAccounts;
use crate::email::EmailAddress;
use crate::error::CoreError;
use crate::model::*;
use crate::open_registration::OpenRegistration;
use crate::ports::{AdminTokens, AuditLog, InstanceSettings, Instances, ManagedUsers, Outbox};
use crate::signup::Signup;
use crate::token::secret_hash;
use serde_json::json;
use std::sync::Arc;
use subtle::ConstantTimeEq;

pub use crate::audit::kinds;

/// The most rows one page of a listing holds.
pub const MAX_PAGE: u32 = 200;
pub const DEFAULT_PAGE: u32 = 50;

/// Who is calling, and what they may reach.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminPrincipal {
    pub actor: Actor,
    pub scope: AdminScope,
    pub client: Option<String>,
}

impl AdminPrincipal {
    /// The operator at the host's shell: everything.
    pub fn cli() -> Self {
        Self { actor: Actor::Cli, scope: AdminScope { instance: None, read_only: false }, client: None }
    }

    /// May this principal see `instance` (`None`: what belongs to no instance)?
    pub fn may_read(&self, instance: Option<InstanceId>) -> Result<(), CoreError> {
        match (self.scope.instance, instance) {
            (None, _) => Ok(()),
            (Some(mine), Some(theirs)) if mine == theirs => Ok(()),
            _ => Err(CoreError::AdminForbidden),
        }
    }

    /// May this principal change `instance`?
    pub fn may_write(&self, instance: Option<InstanceId>) -> Result<(), CoreError> {
        self.may_read(instance)?;
        if self.scope.read_only { Err(CoreError::AdminForbidden) } else { Ok(()) }
    }

    /// An audit entry of this principal's action.
    pub fn event(
        &self,
        kind: &'static str,
        instance: Option<InstanceId>,
        target: Option<String>,
        user: Option<String>,
        detail: serde_json::Value,
        at: time::OffsetDateTime,
    ) -> NewAuditEvent {
        NewAuditEvent {
            publish: false,
            instance,
            kind,
            actor: self.actor.to_string(),
            target,
            user,
            client: self.client.clone(),
            detail,
            at,
        }
    }
}

/// How a listing of users is asked for, as received (the use case parses it).
#[derive(Debug, Clone, Default)]
pub struct UserQuery {
    /// A whole address (exact) or the start of one.
    pub email: Option<String>,
    pub username: Option<String>,
    pub phone: Option<String>,
    pub status: Option<String>,
    pub cursor: Option<String>,
    pub limit: Option<u32>,
}

/// A page's cursor, as clients see it: opaque.
pub fn cursor_text(key: i64) -> String {
    format!("c{key}")
}

pub(crate) fn cursor_key(cursor: Option<&str>) -> Result<Option<i64>, CoreError> {
    match cursor.filter(|c| !c.is_empty()) {
        None => Ok(None),
        Some(c) => c
            .strip_prefix('c')
            .and_then(|k| k.parse::<i64>().ok())
            .filter(|k| *k > 0)
            .map(Some)
            .ok_or_else(|| CoreError::field("cursor", "invalid_cursor", "is not a cursor this API gave")),
    }
}

pub(crate) fn page_limit(limit: Option<u32>) -> Result<u32, CoreError> {
    match limit {
        None => Ok(DEFAULT_PAGE),
        Some(n) if (1..=MAX_PAGE).contains(&n) => Ok(n),
        Some(_) => Err(CoreError::field("limit", "out_of_range", &format!("must be 1 to {MAX_PAGE}"))),
    }
}

/// The operator's use cases.
#[derive(Clone)]
pub struct Admin {
    pub(crate) common: Common,
    pub(crate) tokens: Arc<dyn AdminTokens>,
    pub(crate) users: Arc<dyn ManagedUsers>,
    pub(crate) audit: Arc<dyn AuditLog>,
    pub(crate) outbox: Arc<dyn Outbox>,
    pub(crate) instances: Arc<dyn Instances>,
    pub(crate) instance_settings: Arc<dyn InstanceSettings>,
    pub(crate) signup: Signup,
    pub(crate) open_registration: OpenRegistration,
    pub(crate) contract_accounts: ContractAccounts,
    pub(crate) provisioner: crate::provision::Provisioner,
    pub(crate) invites: crate::invitations::Invites,
}

impl Admin {
    fn now(&self) -> time::OffsetDateTime {
        self.common.now()
    }

    // --- tokens -------------------------------------------------------------------------

    /// A new admin token, global or for `instance` (by name); shown once, stored hashed. Only
    /// a global read-write principal (the CLI, or such a token) makes tokens.
    pub async fn create_token(
        &self,
        by: &AdminPrincipal,
        instance: Option<&str>,
        read_only: bool,
        label: &str,
    ) -> Result<(AdminTokenRecord, String), CoreError> {
        by.may_write(None)?;
        let label = label.trim();
        if label.chars().count() > 100 || crate::text::has_forbidden(label) {
            return Err(CoreError::field("label", "invalid_label", "must be at most 100 plain characters"));
        }
        let scoped = match instance {
            Some(name) => Some(self.instance_summary(name).await?),
            None => None,
        };
        let token = format!("oadm_{}", self.common.tokens.secret_token());
        let now = self.now();
        let scope = AdminScope { instance: scoped.as_ref().map(|s| s.id), read_only };
        let new = NewAdminToken {
            id: self.common.tokens.public_id("adm"),
            secret_hash: secret_hash(&token),
            prefix: token.chars().take(9).collect(),
            label: label.to_owned(),
            scope,
            created_at: now,
        };
        let detail = json!({ "label": new.label, "read_only": read_only,
                             "instance": scoped.as_ref().map(|s| s.name.clone()) });
        let audit =
            by.event(kinds::ADMIN_TOKEN_CREATED, scope.instance, Some(new.id.clone()), None, detail, now);
        self.tokens.create_admin_token(&new, &audit).await?;
        let record = AdminTokenRecord {
            id: new.id,
            secret_hash: new.secret_hash,
            prefix: new.prefix,
            label: new.label,
            scope,
            instance_name: scoped.map(|s| s.name),
            created_at: now,
            revoked_at: None,
        };
        Ok((record, token))
    }

    pub async fn tokens(&self, by: &AdminPrincipal) -> Result<Vec<AdminTokenRecord>, CoreError> {
        by.may_read(None)?;
        Ok(self.tokens.list_admin_tokens().await?)
    }

    /// Revoke a live token; calls with it are refused at once.
    pub async fn revoke_token(&self, by: &AdminPrincipal, id: &str) -> Result<(), CoreError> {
        by.may_write(None)?;
        let now = self.now();
        let audit = by.event(kinds::ADMIN_TOKEN_REVOKED, None, Some(id.to_owned()), None, json!({}), now);
        if self.tokens.revoke_admin_token(id, now, &audit).await? {
            Ok(())
        } else {
            Err(CoreError::NotFound {
                code: "token_not_found",
                message: "There is no live admin token with that id.",
            })
        }
    }

    /// The principal a bearer token stands for.
    pub async fn authenticate(
        &self,
        token: &str,
        client: Option<String>,
    ) -> Result<AdminPrincipal, CoreError> {
        if !token.starts_with("oadm_") || token.len() > 128 {
            return Err(CoreError::AdminUnauthorized);
        }
        let hash = secret_hash(token);
        let record = self.tokens.admin_token_by_hash(&hash).await?.ok_or(CoreError::AdminUnauthorized)?;
        if !bool::from(record.secret_hash.as_bytes().ct_eq(hash.as_bytes())) || record.revoked_at.is_some() {
            return Err(CoreError::AdminUnauthorized);
        }
        Ok(AdminPrincipal { actor: Actor::Admin(record.id), scope: record.scope, client })
    }

    // --- invitations ----------------------------------------------------------------------

    /// The live instance `name`, if `by` may read it (or write it, with `write`).
    async fn live_instance(
        &self,
        by: &AdminPrincipal,
        name: &str,
        write: bool,
    ) -> Result<Instance, CoreError> {
        let summary = self.instance(by, name).await?;
        if write {
            by.may_write(Some(summary.id))?;
        }
        self.common.directory.instance(name).await
    }

    pub async fn invite(
        &self,
        by: &AdminPrincipal,
        instance: &str,
        input: crate::invitations::InviteInput,
    ) -> Result<InvitationRecord, CoreError> {
        let instance = self.live_instance(by, instance, true).await?;
        self.invites.create(&instance, &by.actor.to_string(), input).await
    }

    pub async fn invitations(
        &self,
        by: &AdminPrincipal,
        instance: &str,
        query: &crate::invitations::InvitationQuery,
    ) -> Result<Page<InvitationRecord>, CoreError> {
        let instance = self.live_instance(by, instance, false).await?;
        self.invites.list(&instance, None, query).await
    }

    pub async fn resend_invitation(
        &self,
        by: &AdminPrincipal,
        instance: &str,
        id: &str,
    ) -> Result<InvitationRecord, CoreError> {
        let instance = self.live_instance(by, instance, true).await?;
        self.invites.resend(&instance, None, id, &by.actor.to_string()).await
    }

    pub async fn revoke_invitation(
        &self,
        by: &AdminPrincipal,
        instance: &str,
        id: &str,
    ) -> Result<InvitationRecord, CoreError> {
        let instance = self.live_instance(by, instance, true).await?;
        self.invites.revoke(&instance, None, id, &by.actor.to_string()).await
    }

    // --- instances ------------------------------------------------------------------------

    /// Any instance by name, in whatever state.
    async fn instance_summary(&self, name: &str) -> Result<InstanceSummary, CoreError> {
        self.instances.instance_summary(name).await?.ok_or(CoreError::InstanceNotFound)
    }

    /// The instance `name` if `by` may see it. An instance out of scope is `AdminForbidden`
    /// whether or not it exists, so a scoped token learns no other instance's name.
    pub async fn instance(&self, by: &AdminPrincipal, name: &str) -> Result<InstanceSummary, CoreError> {
        let summary = self.instances.instance_summary(name).await?;
        match summary {
            Some(s) => {
                by.may_read(Some(s.id))?;
                Ok(s)
            }
            None if by.scope.instance.is_some() => Err(CoreError::AdminForbidden),
            None => Err(CoreError::InstanceNotFound),
        }
    }

    /// Create an instance (a global read-write principal only), as `onramp instance create`
    /// does; recorded once provisioning is over (it calls webhooks: not one transaction), a
    /// failure too (`provisioning_failed` stays to be retried, when so configured).
    pub async fn create_instance(&self, by: &AdminPrincipal, name: &str) -> Result<Instance, CoreError> {
        by.may_write(None)?;
        let outcome = self.provisioner.create_instance(name).await;
        if matches!(outcome, Ok(_) | Err(CoreError::ProvisioningFailed)) {
            let detail = json!({ "failed": outcome.is_err() });
            let id = self.instances.instance_summary(name).await?.map(|s| s.id);
            let event =
                by.event(kinds::INSTANCE_CREATED, id, Some(name.to_owned()), None, detail, self.now());
            self.audit.record_audit(&event).await?;
        }
        outcome
    }

    /// Finish an instance whose provisioning failed; recorded like `create_instance`.
    pub async fn retry_instance(&self, by: &AdminPrincipal, name: &str) -> Result<Instance, CoreError> {
        let summary = self.instance(by, name).await?;
        by.may_write(Some(summary.id))?;
        let outcome = self.provisioner.retry(name).await;
        if matches!(outcome, Ok(_) | Err(CoreError::ProvisioningFailed)) {
            let detail = json!({ "failed": outcome.is_err() });
            let event = by.event(
                kinds::INSTANCE_RETRIED,
                Some(summary.id),
                Some(name.to_owned()),
                None,
                detail,
                self.now(),
            );
            self.audit.record_audit(&event).await?;
        }
        outcome
    }

    /// Delete a disabled instance (or one whose provisioning failed) with all its users and
    /// data, its own database too; its audit entries stay. Only a global read-write principal.
    pub async fn delete_instance(&self, by: &AdminPrincipal, name: &str) -> Result<(), CoreError> {
        by.may_write(None)?;
        let summary = self.instance(by, name).await?;
        if !matches!(summary.status, InstanceStatus::Disabled | InstanceStatus::ProvisioningFailed) {
            return Err(CoreError::WrongState("Only a disabled instance is deleted: disable it first."));
        }
        let detail = json!({ "users": summary.users, "apps": summary.apps });
        let audit =
            by.event(kinds::INSTANCE_DELETED, None, Some(summary.name.clone()), None, detail, self.now());
        if !self.instances.delete_instance(summary.id, &audit).await? {
            return Err(CoreError::InstanceNotFound);
        }
        let instance = Instance { id: summary.id, name: summary.name };
        if let Err(e) = self.instances.drop_instance_database(&instance).await {
            tracing::warn!(error = %e, instance = %instance.name, "the deleted instance's own database is left behind");
        }
        self.common.directory.instance_cache.remove(&instance.name);
        Ok(())
    }

    /// The instances `by` may see.
    pub async fn instances(&self, by: &AdminPrincipal) -> Result<Vec<InstanceSummary>, CoreError> {
        let all = self.instances.list_instances().await?;
        Ok(all.into_iter().filter(|s| by.may_read(Some(s.id)).is_ok()).collect())
    }

    // --- users ----------------------------------------------------------------------------

    /// Users of an instance, newest first, filtered.
    pub async fn users(
        &self,
        by: &AdminPrincipal,
        instance: &str,
        query: &UserQuery,
    ) -> Result<Page<UserRecord>, CoreError> {
        let instance = self.instance(by, instance).await?;
        let email = match query.email.as_deref().map(str::trim).filter(|e| !e.is_empty()) {
            None => None,
            Some(e) if e.contains('@') => match EmailAddress::parse(e) {
                Ok(e) => Some(EmailMatch::Exact(e.canonical().to_owned())),
                Err(_) => Some(EmailMatch::Exact(e.to_lowercase())),
            },
            Some(e) => Some(EmailMatch::Prefix(e.to_lowercase())),
        };
        let status = match query.status.as_deref().filter(|s| !s.is_empty()) {
            None => None,
            Some(s) => Some(UserStatus::parse(s).ok_or_else(|| {
                CoreError::field(
                    "status",
                    "invalid_status",
                    "must be pending, active, inactive, unconfirmed or deleted",
                )
            })?),
        };
        let filter = UserFilter {
            email,
            username_canonical: query
                .username
                .as_deref()
                .filter(|u| !u.trim().is_empty())
                .map(crate::username::username_key),
            phone: query.phone.as_deref().map(str::trim).filter(|p| !p.is_empty()).map(str::to_owned),
            status,
            before: cursor_key(query.cursor.as_deref())?,
            limit: page_limit(query.limit)?,
            now: Some(self.now()),
        };
        Ok(self.users.find_users(instance.id, &filter).await?)
    }

    /// One user, by public id.
    pub async fn user(
        &self,
        by: &AdminPrincipal,
        instance: &str,
        user_id: &str,
    ) -> Result<UserRecord, CoreError> {
        let instance = self.instance(by, instance).await?;
        self.user_in(&instance, user_id).await
    }

    async fn user_in(&self, instance: &InstanceSummary, user_id: &str) -> Result<UserRecord, CoreError> {
        if user_id.len() > 64 {
            return Err(CoreError::UserNotFound);
        }
        self.users.user_record(instance.id, user_id, self.now()).await?.ok_or(CoreError::UserNotFound)
    }

    /// The instance and user a change is about, once `by` may change them.
    async fn target(
        &self,
        by: &AdminPrincipal,
        instance: &str,
        user_id: &str,
    ) -> Result<(InstanceSummary, UserRecord), CoreError> {
        let instance = self.instance(by, instance).await?;
        by.may_write(Some(instance.id))?;
        let user = self.user_in(&instance, user_id).await?;
        if user.status == UserStatus::Deleted {
            return Err(CoreError::WrongState("The user was deleted."));
        }
        Ok((instance, user))
    }

    fn user_event(
        &self,
        by: &AdminPrincipal,
        kind: &'static str,
        instance: &InstanceSummary,
        user: &UserRecord,
        detail: serde_json::Value,
    ) -> NewAuditEvent {
        let id = Some(user.public_id.clone());
        self.common
            .publishing(&instance.name, by.event(kind, Some(instance.id), id.clone(), id, detail, self.now()))
    }

    /// Disable (`enabled = false`) or enable a user. A disabled user cannot log in on any
    /// surface and their sessions end at once; enabling restores what they were (active, or
    /// pending when never activated). Doing what is already so changes nothing and is no error.
    pub async fn set_user_enabled(
        &self,
        by: &AdminPrincipal,
        instance: &str,
        user_id: &str,
        enabled: bool,
    ) -> Result<UserRecord, CoreError> {
        let (instance, user) = self.target(by, instance, user_id).await?;
        let kind = if enabled { kinds::USER_ENABLED } else { kinds::USER_DISABLED };
        let audit = self.user_event(by, kind, &instance, &user, json!({ "was": user.status.as_str() }));
        self.users.set_user_enabled(instance.id, user.key, enabled, &audit).await?;
        self.user_in(&instance, user_id).await
    }

    /// End every live session of a user; how many there were.
    pub async fn revoke_sessions(
        &self,
        by: &AdminPrincipal,
        instance: &str,
        user_id: &str,
    ) -> Result<u64, CoreError> {
        let (instance, user) = self.target(by, instance, user_id).await?;
        let audit = self.user_event(by, kinds::USER_SESSIONS_REVOKED, &instance, &user, json!({}));
        Ok(self.users.revoke_user_sessions(instance.id, user.key, &audit).await?)
    }

    /// Send a pending user's verification again, the way they signed up: a `/v1` signup gets
    /// a new activation link, a DreamFactory registration a new confirmation code, a contract
    /// account a new texted code. Earlier ones stop working.
    pub async fn resend_verification(
        &self,
        by: &AdminPrincipal,
        instance_name: &str,
        user_id: &str,
    ) -> Result<(), CoreError> {
        let (instance, user) = self.target(by, instance_name, user_id).await?;
        if user.status != UserStatus::Pending {
            return Err(CoreError::WrongState("Only a pending user has a verification to resend."));
        }
        let live = Instance { id: instance.id, name: instance.name.clone() };
        let (verification, message, how) = if user.fields.is_some() {
            let number = user.profile.phone.clone().ok_or(CoreError::WrongState(
                "The contract account has no phone number to text a code to.",
            ))?;
            let app = user.app_id.as_deref().unwrap_or_default();
            let app = self.contract_accounts.apps.app(instance.id, app).await?.map(|a| a.name);
            let app_name = app.unwrap_or_default();
            let (v, m) = self.contract_accounts.sms_code(&user.uuid, &number, &user.language, &app_name)?;
            (v, m, "sms")
        } else if user.account_id.is_some() {
            let (v, m) = self.signup.activation_mail(&live, &user).await?;
            (v, m, "activation_link")
        } else {
            let settings = self.instance_settings.instance_settings(instance.id).await?;
            let (v, m) = self.open_registration.code_mail(&live, &settings, CodeMail::Confirmation, &user)?;
            (v, m, "confirmation_code")
        };
        let audit =
            self.user_event(by, kinds::USER_VERIFICATION_RESENT, &instance, &user, json!({ "via": how }));
        let reissue = Reissue { verification, message, clear_password: false, audit };
        self.users.reissue_secret(instance.id, user.key, &reissue).await?;
        self.common.wake_outbox();
        Ok(())
    }

    /// Make a user choose a new password: the current one stops working, every session ends,
    /// and a reset code is mailed (the DreamFactory reset, which the hosted page redeems).
    pub async fn require_password_reset(
        &self,
        by: &AdminPrincipal,
        instance_name: &str,
        user_id: &str,
    ) -> Result<(), CoreError> {
        let (instance, user) = self.target(by, instance_name, user_id).await?;
        if matches!(user.status, UserStatus::Inactive) {
            return Err(CoreError::WrongState("The user is disabled; enable them first."));
        }
        let live = Instance { id: instance.id, name: instance.name.clone() };
        let settings = self.instance_settings.instance_settings(instance.id).await?;
        let (verification, message) =
            self.open_registration.code_mail(&live, &settings, CodeMail::Reset, &user)?;
        let audit = self.user_event(by, kinds::USER_PASSWORD_RESET_REQUIRED, &instance, &user, json!({}));
        let reissue = Reissue { verification, message, clear_password: true, audit };
        self.users.reissue_secret(instance.id, user.key, &reissue).await?;
        self.common.wake_outbox();
        Ok(())
    }

    /// Erase a user's personal data, keeping an anonymous tombstone (their public id) that
    /// the audit log refers to. Their address is free for a new signup.
    pub async fn delete_user(
        &self,
        by: &AdminPrincipal,
        instance: &str,
        user_id: &str,
    ) -> Result<(), CoreError> {
        let (instance, user) = self.target(by, instance, user_id).await?;
        let audit = self.user_event(by, kinds::USER_DELETED, &instance, &user, json!({}));
        self.users.erase_user(instance.id, user.key, &audit).await?;
        Ok(())
    }

    /// The instance `name`, once `by` may import users into it.
    pub async fn import_target(&self, by: &AdminPrincipal, name: &str) -> Result<InstanceSummary, CoreError> {
        let instance = self.instance(by, name).await?;
        by.may_write(Some(instance.id))?;
        Ok(instance)
    }

    /// Import one batch of rows (each with its number, at most `import::BATCH`): each is
    /// created, skipped as a duplicate or refused with a reason; in row order.
    pub async fn import_batch(
        &self,
        by: &AdminPrincipal,
        instance: &InstanceSummary,
        rows: Vec<crate::import::SplitRow>,
    ) -> Result<Vec<(usize, crate::import::RowResult)>, CoreError> {
        use crate::import::{ImportRow, RowResult, prepare};
        by.may_write(Some(instance.id))?;
        let mut results: Vec<(usize, Option<RowResult>)> = Vec::with_capacity(rows.len());
        let mut ready = Vec::new();
        for (n, row) in rows {
            let parsed = row
                .map_err(|why| ("invalid_row", why))
                .and_then(|bytes| {
                    serde_json::from_slice::<ImportRow>(&bytes).map_err(|e| ("invalid_row", e.to_string()))
                })
                .and_then(|row| {
                    let ids = (self.common.tokens.public_id("usr"), self.common.uuid());
                    prepare(row, ids)
                });
            match parsed {
                Ok(user) => {
                    ready.push((results.len(), user));
                    results.push((n, None));
                }
                Err((code, reason)) => results.push((n, Some(RowResult::Refused { code, reason }))),
            }
        }
        if !ready.is_empty() {
            let audit = by.event(kinds::USER_IMPORTED, Some(instance.id), None, None, json!({}), self.now());
            let users: Vec<ImportedUser> = ready.iter().map(|(_, u)| u.clone()).collect();
            let outcomes = self.users.import_users(instance.id, &users, &audit).await?;
            for ((at, user), outcome) in ready.into_iter().zip(outcomes) {
                results[at].1 = Some(match outcome {
                    ImportOutcome::Created => RowResult::Created { id: user.user.public_id },
                    ImportOutcome::Duplicate => RowResult::Duplicate,
                    ImportOutcome::UsernameTaken => RowResult::Refused {
                        code: "username_taken",
                        reason: "username belongs to another user".into(),
                    },
                });
            }
        }
        Ok(results
            .into_iter()
            .map(|(n, r)| {
                (n, r.unwrap_or(RowResult::Refused { code: "internal", reason: "not imported".into() }))
            })
            .collect())
    }

    /// Users in creation order after `after` (a cursor), for an export.
    pub async fn export_page(
        &self,
        by: &AdminPrincipal,
        instance: &InstanceSummary,
        after: i64,
        limit: u32,
    ) -> Result<Vec<UserRecord>, CoreError> {
        by.may_read(Some(instance.id))?;
        Ok(self.users.users_after(instance.id, after, limit, self.now()).await?)
    }

    // --- outbox -----------------------------------------------------------------------------

    /// Messages, newest first; a scoped principal sees only its instance's.
    pub async fn outbox(
        &self,
        by: &AdminPrincipal,
        status: Option<&str>,
        instance: Option<&str>,
        cursor: Option<&str>,
        limit: Option<u32>,
    ) -> Result<Page<OutboxEntry>, CoreError> {
        let status = match status.filter(|s| !s.is_empty()) {
            None => None,
            Some(s @ ("pending" | "dead" | "delivered")) => Some(s.to_owned()),
            Some(_) => {
                return Err(CoreError::field(
                    "status",
                    "invalid_status",
                    "must be pending, dead or delivered",
                ));
            }
        };
        let instance = match instance.filter(|i| !i.is_empty()) {
            Some(name) => Some(self.instance(by, name).await?.id),
            None => by.scope.instance,
        };
        let filter =
            OutboxFilter { status, instance, before: cursor_key(cursor)?, limit: page_limit(limit)? };
        Ok(self.outbox.list_outbox(&filter).await?)
    }

    /// Make one pending or dead message due now, its attempts reset.
    pub async fn retry_message(&self, by: &AdminPrincipal, id: i64) -> Result<(), CoreError> {
        let (instance, entry) = self.outbox.outbox_entry(id).await?.ok_or(CoreError::NotFound {
            code: "message_not_found",
            message: "There is no message with that id.",
        })?;
        by.may_write(Some(instance))?;
        let audit = by.event(
            kinds::OUTBOX_RETRIED,
            Some(instance),
            Some(id.to_string()),
            None,
            json!({ "kind": entry.kind, "status": entry.status, "attempts": entry.attempts }),
            self.now(),
        );
        if !self.outbox.retry_outbox(id, self.now(), &audit).await? {
            return Err(CoreError::WrongState(
                "Only a pending or dead message that still has its content can be retried.",
            ));
        }
        self.common.wake_outbox();
        Ok(())
    }

    /// Make every dead letter (of `instance`, or every one a global principal may reach) due
    /// again; how many.
    pub async fn retry_dead(&self, by: &AdminPrincipal, instance: Option<&str>) -> Result<u64, CoreError> {
        let instance = match instance.filter(|i| !i.is_empty()) {
            Some(name) => Some(self.instance(by, name).await?.id),
            None => by.scope.instance,
        };
        by.may_write(instance)?;
        let audit =
            by.event(kinds::OUTBOX_RETRIED, instance, None, None, json!({ "dead": true }), self.now());
        let n = self.outbox.requeue_dead_outbox(instance, self.now(), &audit).await?;
        self.common.wake_outbox();
        Ok(n)
    }

    // --- audit ------------------------------------------------------------------------------

    /// Audit entries, newest first; a scoped principal sees only its instance's.
    pub async fn audit(
        &self,
        by: &AdminPrincipal,
        instance: Option<&str>,
        query: AuditQuery<'_>,
    ) -> Result<Page<AuditEvent>, CoreError> {
        let instance = match instance.filter(|i| !i.is_empty()) {
            Some(name) => Some(self.instance(by, name).await?.id),
            None => by.scope.instance,
        };
        let filter = AuditFilter {
            instance,
            user: query.user.filter(|u| !u.is_empty()).map(str::to_owned),
            kind: query.kind.filter(|k| !k.is_empty()).map(str::to_owned),
            since: query.since,
            before: cursor_key(query.cursor)?,
            limit: page_limit(query.limit)?,
        };
        Ok(self.audit.audit_events(&filter).await?)
    }

    /// Delete audit entries older than the retention; how many (bounded per call).
    pub async fn prune_audit(&self, retention: time::Duration) -> Result<u64, CoreError> {
        Ok(self.audit.prune_audit(self.now() - retention, 10_000).await?)
    }
}

/// Filters of the audit listing.
#[derive(Debug, Clone, Copy, Default)]
pub struct AuditQuery<'a> {
    pub user: Option<&'a str>,
    pub kind: Option<&'a str>,
    pub since: Option<time::OffsetDateTime>,
    pub cursor: Option<&'a str>,
    pub limit: Option<u32>,
}

/// Which emailed code an operator sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeMail {
    Confirmation,
    Reset,
}
