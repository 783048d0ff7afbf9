//! What the store's test binaries share: a migrated store on either database, and builders.

#![allow(dead_code)]

use onramp_core::model::*;
use onramp_core::ports::{AppSpec, Store};
use onramp_store::testing::TestDatabase;
use std::sync::Arc;
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

#[derive(Debug, Clone, Copy)]
pub enum Db {
    Sqlite,
    Postgres,
}
pub const SQLITE: Db = Db::Sqlite;
pub const POSTGRES: Db = Db::Postgres;

pub const NOW: OffsetDateTime = datetime!(2026-03-01 12:00 UTC);

/// A migrated store, and what keeps its database alive.
pub struct Fixture {
    pub store: Arc<dyn Store>,
    pub url: String,
    pub _dir: tempfile::TempDir,
    _pg: Option<TestDatabase>,
}

pub async fn open(db: Db) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let (url, pg) = match db {
        Db::Sqlite => (format!("sqlite://{}", dir.path().join("s.sqlite3").display()), None),
        Db::Postgres => {
            let pg = TestDatabase::create().await.unwrap_or_else(|e| panic!("{e}"));
            (pg.url.clone(), Some(pg))
        }
    };
    let store = onramp_store::connect(&url, &Default::default()).await.unwrap();
    store.migrate().await.unwrap();
    Fixture { store, url, _dir: dir, _pg: pg }
}

pub async fn instance(store: &dyn Store, name: &str) -> Instance {
    let key = onramp_core::session::generate_key(format!("key_{name}"), NOW).unwrap();
    store.ensure_instance(name, key).await.unwrap()
}

pub fn message(n: usize) -> NewOutboxMessage {
    NewOutboxMessage {
        kind: "mail:test".into(),
        recipient: format!("r{n}@example.com"),
        message_id: format!("<m{n}@test>"),
        sealed_payload: vec![1, 2, 3],
        created_at: NOW,
    }
}

pub fn person(n: usize, email: &str, status: UserStatus) -> NewUser {
    NewUser {
        public_id: format!("usr_p{n}"),
        uuid: uuid::Uuid::from_u128(0xC0DE_0000 + n as u128),
        email: email.into(),
        email_canonical: email.to_lowercase(),
        username: Some(format!("person{n}")),
        username_canonical: Some(format!("person{n}")),
        name: format!("Person {n}"),
        language: "en".into(),
        status,
        password_hash: format!("$argon2id$p{n}"),
        metadata: None,
    }
}

pub fn secret(purpose: Purpose, hash: &str) -> NewVerification {
    NewVerification { purpose, secret_hash: hash.into(), expires_at: NOW + Duration::hours(24) }
}

/// An app with one domain that takes signups, in instance `name`.
pub async fn app_with_domain(store: &dyn Store, name: &str) -> Instance {
    let inst = instance(store, name).await;
    let spec = AppSpec {
        app: App {
            id: "app_demo".into(),
            name: "Demo".into(),
            signup_url: "https://demo.example/activate".into(),
            activation_token_in_response: true,
            schema_version: "ver_1".into(),
        },
        domains: vec![Domain {
            id: "dom_1".into(),
            title: "Acme".into(),
            description: String::new(),
            help: String::new(),
            allow_signup: true,
        }],
    };
    store.apply_app(inst.id, &spec).await.unwrap();
    inst
}

/// An audit entry for a write that takes one (its user filled in by the store where it finds
/// them).
pub fn trail(kind: &'static str) -> NewAuditEvent {
    NewAuditEvent {
        instance: None,
        kind,
        actor: "anonymous".into(),
        target: None,
        user: None,
        client: None,
        detail: serde_json::json!({}),
        at: NOW,
        publish: false,
    }
}
