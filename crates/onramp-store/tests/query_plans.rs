//! Every statement the request path runs is an index lookup, on both databases (issue 15): a
//! query that turns into a scan of a table costs more with every user stored.
//!
//! The test drives each port method a request calls (and the outbox worker's), captures the
//! statements sqlx runs (its `sqlx::query` events), and asks each database for its plan:
//! SQLite's `EXPLAIN QUERY PLAN` must show no `SCAN` of a table, PostgreSQL's generic plan
//! (sequential scans turned off, so one shows only where no index can serve) no `Seq Scan`.
//! A binary of its own, so no other test's statements are captured.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use onramp_core::model::*;
use onramp_core::ports::Store;
use sqlx::{Connection, Row};
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use time::Duration;
use tracing_subscriber::layer::SubscriberExt;

mod support;
use support::*;

/// Statements that scan on purpose, with why that stays cheap.
const BOUNDED_SCANS: [(&str, &str); 1] = [(
    "WHERE a.publish IS NOT NULL ORDER BY a.id LIMIT",
    "the worker walks the partial index `audit_unpublished`, which holds only the entries waiting to be \
     published (the backlog, empty once the worker has passed), in id order and at most LIMIT of them",
)];

#[derive(Default)]
struct Captured {
    on: AtomicBool,
    statements: Mutex<BTreeSet<String>>,
}

struct Capture(Arc<Captured>);

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Capture {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        if event.metadata().target() != "sqlx::query" || !self.0.on.load(Ordering::SeqCst) {
            return;
        }
        #[derive(Default)]
        struct Fields {
            summary: String,
            statement: String,
        }
        impl tracing::field::Visit for Fields {
            fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
                self.record_str(field, &format!("{value:?}"));
            }
            fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
                match field.name() {
                    "summary" => self.summary = value.to_owned(),
                    "db.statement" => self.statement = value.to_owned(),
                    _ => {}
                }
            }
        }
        let mut fields = Fields::default();
        event.record(&mut fields);
        // sqlx gives the whole statement unless its first four words are all of it.
        let sql = if fields.statement.trim().is_empty() { fields.summary } else { fields.statement };
        // A batch (SQLite runs several statements in one call) is planned statement by statement.
        for sql in sql.split(';') {
            let sql = sql.split_whitespace().collect::<Vec<_>>().join(" ");
            let verb = sql.split(' ').next().unwrap_or_default().to_ascii_uppercase();
            if ["SELECT", "INSERT", "UPDATE", "DELETE", "WITH"].contains(&verb.as_str()) {
                self.0.statements.lock().unwrap().insert(sql);
            }
        }
    }
}

#[tokio::test]
async fn every_statement_on_the_request_path_is_an_index_lookup() {
    let captured = Arc::new(Captured::default());
    let subscriber = tracing_subscriber::registry()
        .with(tracing_subscriber::filter::Targets::new().with_target("sqlx::query", tracing::Level::TRACE))
        .with(Capture(captured.clone()));
    tracing::subscriber::set_global_default(subscriber).unwrap();

    let mut problems = Vec::new();
    for db in [SQLITE, POSTGRES] {
        let f = open(db).await;
        captured.statements.lock().unwrap().clear();
        request_path(f.store.as_ref(), &captured).await;
        let statements = std::mem::take(&mut *captured.statements.lock().unwrap());
        assert!(statements.len() > 40, "{db:?}: only {} statements captured", statements.len());
        for sql in &statements {
            if BOUNDED_SCANS.iter().any(|(s, _)| sql.contains(s)) {
                continue;
            }
            let plan = plan(db, &f.url, sql).await;
            if scans(db, &plan) {
                problems.push(format!("{db:?}: {sql}\n    {}", plan.join("\n    ")));
            }
        }
    }
    assert!(problems.is_empty(), "statements that scan a table:\n{}", problems.join("\n\n"));
}

/// The database's plan for `sql`, one line per step.
async fn plan(db: Db, url: &str, sql: &str) -> Vec<String> {
    let params = (1..=40).rev().find(|n| sql.contains(&format!("${n}"))).unwrap_or(0);
    match db {
        Db::Sqlite => {
            let mut conn = sqlx::SqliteConnection::connect(url).await.unwrap();
            let explain = format!("EXPLAIN QUERY PLAN {sql}");
            let mut query = sqlx::query(&explain);
            for _ in 0..params {
                query = query.bind(None::<i64>);
            }
            let rows = query.fetch_all(&mut conn).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
            rows.iter().map(|r| r.get::<String, _>(3)).collect()
        }
        Db::Postgres => {
            let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
            for setup in ["SET enable_seqscan = off", "SET plan_cache_mode = force_generic_plan"] {
                sqlx::query(setup).execute(&mut conn).await.unwrap();
            }
            let prepare = format!("PREPARE plan_me AS {sql}");
            sqlx::raw_sql(&prepare).execute(&mut conn).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
            let nulls = vec!["NULL"; params].join(", ");
            let explain = if params == 0 {
                "EXPLAIN EXECUTE plan_me".to_owned()
            } else {
                format!("EXPLAIN EXECUTE plan_me({nulls})")
            };
            let rows = sqlx::raw_sql(&explain).fetch_all(&mut conn).await.unwrap();
            rows.iter().map(|r| r.get::<String, _>(0)).collect()
        }
    }
}

fn scans(db: Db, plan: &[String]) -> bool {
    match db {
        // `SCAN t` reads every row of t (`SCAN t USING ... INDEX` every entry of an index);
        // `SEARCH t USING ... INDEX (k=?)` is a lookup.
        Db::Sqlite => {
            plan.iter().any(|step| step.trim_start().starts_with("SCAN ") && !step.contains("CONSTANT ROW"))
        }
        // A sequential scan, or an index walked whole (an index scan with no `Index Cond`).
        Db::Postgres => plan.iter().enumerate().any(|(i, step)| {
            let node = |s: &str| s.trim_start().starts_with("->") || !s.starts_with(' ');
            let walks_index = (step.contains("Index Scan") || step.contains("Index Only Scan"))
                && !plan[i + 1..].iter().take_while(|s| !node(s)).any(|s| s.contains("Index Cond"));
            step.contains("Seq Scan") || walks_index
        }),
    }
}

/// Every port method a request calls, on data like a live instance's, and the worker's.
async fn request_path(store: &dyn Store, captured: &Captured) {
    let inst = app_with_domain(store, "plans").await;
    let platform = instance(store, PLATFORM_INSTANCE).await;
    let key = NewApiKey {
        id: "key_1".into(),
        app_id: "app_demo".into(),
        secret_hash: "key-hash".into(),
        prefix: "ork_1234".into(),
        label: "test".into(),
        source: api_key_source::CLI,
        created_at: NOW,
    };
    store.create_api_key(inst.id, &key, None).await.unwrap();
    let active = person(1, "active@a.example", UserStatus::Active);
    store.insert_users(inst.id, &[active], NOW).await.unwrap();
    let field = |name: &str, kind: FieldType| ContractField {
        name: name.into(),
        kind,
        required: true,
        unique: true,
        min_length: None,
        max_length: None,
        pattern: None,
        verify: None,
    };
    let contract = Contract { id: "basic".into(), fields: vec![field("email", FieldType::Email)] };
    store.put_contract(inst.id, "app_demo", &contract, Some(&trail("contract.saved"))).await.unwrap();

    captured.on.store(true, Ordering::SeqCst);
    // Resolving the caller: instance, app, domain, key, settings, origins, signing keys.
    store.instance_by_name("plans").await.unwrap().unwrap();
    store.signup_domain(inst.id, "dom_1").await.unwrap().unwrap();
    store.app(inst.id, "app_demo").await.unwrap().unwrap();
    store.app_domains(inst.id, "app_demo").await.unwrap();
    store.app_origins(inst.id).await.unwrap();
    store.app_settings(inst.id, "app_demo").await.unwrap();
    store.instance_settings(inst.id).await.unwrap();
    store.api_key_by_hash(inst.id, "key-hash").await.unwrap().unwrap();
    store.signing_keys(inst.id).await.unwrap();
    store.rate_limit_hit("create:client:127.0.0.1", NOW, NOW).await.unwrap();
    store.rate_limit_hit("create:client:127.0.0.1", NOW, NOW).await.unwrap();

    // `/v1` signup: new, replacing an unverified one, an existing account; activation.
    let signup = |n: usize, email: &str, token: &str| NewSignup {
        audit: trail("user.signed_up"),
        account: NewAccount {
            public_id: format!("act_{n}"),
            title: "Acme".into(),
            country: "NL".into(),
            app_id: "app_demo".into(),
            domain_id: "dom_1".into(),
            version_id: "ver_1".into(),
        },
        user: person(n, email, UserStatus::Pending),
        verification: secret(Purpose::Activation, token),
        message: message(n),
        replace_pending_issued_before: NOW + Duration::minutes(1),
    };
    store.create_signup(inst.id, &signup(10, "new@a.example", "act-10")).await.unwrap();
    store.create_signup(inst.id, &signup(11, "new@a.example", "act-11")).await.unwrap();
    store.create_signup(inst.id, &signup(12, "active@a.example", "act-12")).await.unwrap();
    store.activate_signup(inst.id, "act-11", NOW, &trail("user.activated")).await.unwrap().unwrap();

    // Logins and sessions.
    let by_email = LoginLookup::EmailCanonical("active@a.example".into());
    let user = store.login_record(inst.id, &by_email).await.unwrap().unwrap();
    store.login_record(inst.id, &LoginLookup::UsernameCanonical("person1".into())).await.unwrap();
    store.set_password_hash(inst.id, user.user_key, "$argon2id$new").await.unwrap();
    let session = SessionRecord {
        id: "ses_1".into(),
        user_key: user.user_key,
        user_public_id: user.public_id.clone(),
        issued_at: NOW,
        expires_at: NOW + Duration::hours(1),
        revoked_at: None,
    };
    store.create_session(inst.id, &session, &trail("login.succeeded")).await.unwrap();
    store.session(inst.id, "ses_1").await.unwrap().unwrap();
    store.revoke_session(inst.id, "ses_1", NOW, &trail("session.revoked")).await.unwrap();
    store.user_view(inst.id, user.user_key).await.unwrap().unwrap();

    // The admin API: its token, and an operator's lookups and changes of one user.
    let audit = |kind: &'static str| NewAuditEvent {
        instance: Some(inst.id),
        kind,
        actor: "admin:adm_1".into(),
        target: Some(user.public_id.clone()),
        user: Some(user.public_id.clone()),
        client: None,
        detail: serde_json::json!({}),
        at: NOW,
        publish: false,
    };
    let token = NewAdminToken {
        id: "adm_1".into(),
        secret_hash: "admin-hash".into(),
        prefix: "oadm_1234".into(),
        label: String::new(),
        scope: AdminScope { instance: Some(inst.id), read_only: false },
        created_at: NOW,
    };
    store.create_admin_token(&token, &audit("admin_token.created")).await.unwrap();
    store.admin_token_by_hash("admin-hash").await.unwrap().unwrap();
    let exact = UserFilter {
        email: Some(EmailMatch::Exact("active@a.example".into())),
        limit: 50,
        now: Some(NOW),
        ..Default::default()
    };
    store.find_users(inst.id, &exact).await.unwrap();
    let by_prefix = UserFilter { email: Some(EmailMatch::Prefix("act".into())), ..exact.clone() };
    store.find_users(inst.id, &by_prefix).await.unwrap();
    let by_username = UserFilter { email: None, username_canonical: Some("person1".into()), ..exact.clone() };
    store.find_users(inst.id, &by_username).await.unwrap();
    let by_phone = UserFilter { email: None, phone: Some("+31612345678".into()), ..exact.clone() };
    store.find_users(inst.id, &by_phone).await.unwrap();
    store.user_record(inst.id, &user.public_id, NOW).await.unwrap().unwrap();
    store.set_user_enabled(inst.id, user.user_key, false, &audit("user.disabled")).await.unwrap();
    store.set_user_enabled(inst.id, user.user_key, true, &audit("user.enabled")).await.unwrap();
    store.revoke_user_sessions(inst.id, user.user_key, &audit("user.sessions_revoked")).await.unwrap();
    let audit_of_user = AuditFilter {
        instance: Some(inst.id),
        user: Some(user.public_id.clone()),
        limit: 50,
        ..Default::default()
    };
    store.audit_events(&audit_of_user).await.unwrap();

    // DreamFactory: registration, reset, code redemption.
    let registration = |n: usize, email: &str| NewRegistration {
        audit: trail("user.signed_up"),
        user: person(n, email, UserStatus::Pending),
        profile: UserProfile::default(),
        role: None,
        verification: Some(secret(Purpose::EmailConfirm, &format!("code-{n}"))),
        message: Some(message(n)),
        replace_pending_issued_before: NOW + Duration::minutes(1),
        created_at: NOW,
    };
    store.register_user(inst.id, &registration(20, "reg@a.example")).await.unwrap();
    store.register_user(inst.id, &registration(21, "reg@a.example")).await.unwrap();
    let reg = store.user_by_email(inst.id, "reg@a.example").await.unwrap().unwrap();
    store
        .issue_secret(inst.id, reg.key, &secret(Purpose::PasswordReset, "reset-1"), &message(22))
        .await
        .unwrap();
    let redemption = CodeRedemption {
        audit: trail("user.activated"),
        email_canonical: "reg@a.example".into(),
        purposes: vec![Purpose::EmailConfirm, Purpose::PasswordReset],
        secret_hash: "reset-1".into(),
        new_password_hash: "$argon2id$reset".into(),
        now: NOW,
        max_attempts: u32::MAX,
    };
    store.redeem_code(inst.id, &redemption).await.unwrap().unwrap();
    store
        .issue_secret(inst.id, reg.key, &secret(Purpose::FastTrackLogin, "guid-1"), &message(23))
        .await
        .unwrap();
    store.redeem_secret(inst.id, Purpose::FastTrackLogin, "guid-1", NOW).await.unwrap().unwrap();

    // dialogportal: contract accounts with a texted code.
    store.contract(inst.id, "app_demo", "basic").await.unwrap().unwrap();
    let account = NewContractAccount {
        audit: trail("user.signed_up"),
        user: person(30, "dp@a.example", UserStatus::Pending),
        app_id: "app_demo".into(),
        profile: r#"{"email":"dp@a.example"}"#.into(),
        phone: Some("+31201234567".into()),
        unique: vec![("email".into(), "dp@a.example".into())],
        ext_key: Some((12, "ext-30".into())),
        sms: Some((secret(Purpose::Sms, "sms-30"), message(30))),
        created_at: NOW,
    };
    let ContractOutcome::Created { dp_key } = store.create_contract_account(inst.id, &account).await.unwrap()
    else {
        panic!("created")
    };
    store.create_contract_account(inst.id, &account).await.unwrap();
    store.contract_account(inst.id, dp_key).await.unwrap().unwrap();
    store.resend_sms(inst.id, dp_key, &secret(Purpose::Sms, "sms-31"), &message(31), 5).await.unwrap();
    store.verify_sms(inst.id, dp_key, "wrong", NOW, 5, &trail("user.activated")).await.unwrap().unwrap_err();
    store.verify_sms(inst.id, dp_key, "sms-31", NOW, 5, &trail("user.activated")).await.unwrap().unwrap();

    // FastTrack, its login and its claim.
    let new_instance = NewInstance {
        naming: InstanceNaming::FirstFree { base: "joe".into(), avoid: vec![] },
        key: onramp_core::session::generate_key("key_joe".into(), NOW).unwrap(),
        roles: vec![RoleSpec { name: "admin".into(), description: "Admin".into() }],
        app: App {
            id: "app_default".into(),
            name: "Default".into(),
            signup_url: "https://{instance}.example/activate".into(),
            activation_token_in_response: false,
            schema_version: "ver_default".into(),
        },
        created_at: NOW,
    };
    let fast_track = NewFastTrack {
        audit: trail("fast_track.provisioned"),
        instance: new_instance,
        owner: person(40, "joe@a.example", UserStatus::Unconfirmed),
        admin: person(41, "joe@a.example", UserStatus::Active),
        profile: UserProfile::default(),
        admin_role: "admin".into(),
        login: secret(Purpose::FastTrackLogin, "ft-guid"),
        claim: secret(Purpose::FastTrackClaim, "ft-claim"),
    };
    let provisioned = store.provision_fast_track(&fast_track).await.unwrap();
    store
        .finish_provisioning(
            provisioned.instance.id,
            "sqlite:x",
            Some((platform.id, &message(42))),
            &trail("instance.provisioned"),
        )
        .await
        .unwrap();
    store.fast_track_claim("ft-claim", None, NOW).await.unwrap().unwrap();
    store.release_unconfirmed_owners(NOW - Duration::hours(1), Some("joe@a.example"), NOW, 10).await.unwrap();

    // Lifecycle events: an entry marked to be published, read by the worker and handed over.
    let marked = NewAuditEvent { instance: Some(inst.id), publish: true, ..trail("user.disabled") };
    store.record_audit(&marked).await.unwrap();
    let pending = store.unpublished_events(100).await.unwrap();
    store.publish_event(pending[0].id, &[(inst.id, message(49))]).await.unwrap();

    // The outbox: a message enqueued, claimed by the worker, sent or retried.
    store.enqueue(inst.id, &message(50)).await.unwrap();
    let claimed = store.claim_outbox(NOW, Duration::minutes(1), 10).await.unwrap();
    store.outbox_delivered(claimed[0].id, NOW).await.unwrap();
    store.outbox_failed(claimed[1].id, 1, Some(NOW + Duration::minutes(1)), "later").await.unwrap();
    captured.on.store(false, Ordering::SeqCst);
}
