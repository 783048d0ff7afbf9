//! The store contract: the same behaviour from every backend, checked at the port.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use onramp_core::model::*;
use onramp_core::ports::Store;
use onramp_store::testing::TestDatabase;
use rstest::rstest;
use std::collections::HashSet;
use std::sync::Arc;
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

#[derive(Debug, Clone, Copy)]
enum Db {
    Sqlite,
    Postgres,
}
const SQLITE: Db = Db::Sqlite;
const POSTGRES: Db = Db::Postgres;

const NOW: OffsetDateTime = datetime!(2026-03-01 12:00 UTC);

/// A migrated store, and what keeps its database alive.
struct Fixture {
    store: Arc<dyn Store>,
    url: String,
    _dir: tempfile::TempDir,
    _pg: Option<TestDatabase>,
}

async fn open(db: Db) -> Fixture {
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

async fn instance(store: &dyn Store, name: &str) -> Instance {
    let key = onramp_core::session::generate_key(format!("key_{name}"), NOW).unwrap();
    store.ensure_instance(name, key).await.unwrap()
}

fn message(n: usize) -> NewOutboxMessage {
    NewOutboxMessage {
        kind: "mail:test".into(),
        recipient: format!("r{n}@example.com"),
        message_id: format!("<m{n}@test>"),
        sealed_payload: vec![1, 2, 3],
        created_at: NOW,
    }
}

#[rstest]
#[tokio::test]
async fn migrating_twice_changes_nothing(#[values(SQLITE, POSTGRES)] db: Db) {
    let f = open(db).await;
    f.store.migrate().await.unwrap();
    f.store.ping().await.unwrap();
}

#[rstest]
#[tokio::test]
async fn a_schema_newer_than_this_build_is_refused(#[values(SQLITE, POSTGRES)] db: Db) {
    let f = open(db).await;
    // A migration this build does not know, as a newer onramp would have left it.
    let insert = "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
                  VALUES (99990101000000, 'from the future', TRUE, X'00', 1)";
    let insert_pg = "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
                     VALUES (99990101000000, 'from the future', TRUE, '\\x00'::bytea, 1)";
    match db {
        Db::Sqlite => {
            let pool = sqlx::SqlitePool::connect(&f.url).await.unwrap();
            sqlx::query(insert).execute(&pool).await.unwrap();
        }
        Db::Postgres => {
            let pool = sqlx::PgPool::connect(&f.url).await.unwrap();
            sqlx::query(insert_pg).execute(&pool).await.unwrap();
        }
    }
    let err = f.store.migrate().await.unwrap_err().to_string();
    assert!(err.contains("migration"), "{err}");
}

#[rstest]
#[tokio::test]
async fn ensuring_an_instance_twice_keeps_one_instance_and_one_key(#[values(SQLITE, POSTGRES)] db: Db) {
    let f = open(db).await;
    let a = instance(f.store.as_ref(), "acme").await;
    let b = instance(f.store.as_ref(), "acme").await;
    assert_eq!(a, b);
    assert_eq!(f.store.signing_keys(a.id).await.unwrap().len(), 1);
    assert!(f.store.instance_by_name("nosuch").await.unwrap().is_none());
}

#[rstest]
#[tokio::test]
async fn concurrent_claimers_never_share_a_message(#[values(SQLITE, POSTGRES)] db: Db) {
    let f = open(db).await;
    let inst = instance(f.store.as_ref(), "default").await;
    for n in 0..100 {
        f.store.enqueue(inst.id, &message(n)).await.unwrap();
    }
    let claimers: Vec<_> = (0..4)
        .map(|_| {
            let store = f.store.clone();
            tokio::spawn(async move {
                let mut mine = Vec::new();
                for _ in 0..100 {
                    let batch = store.claim_outbox(NOW, Duration::minutes(1), 7).await.unwrap();
                    if batch.is_empty() {
                        break;
                    }
                    mine.extend(batch.into_iter().map(|m| m.id));
                }
                mine
            })
        })
        .collect();
    let mut all = Vec::new();
    for c in claimers {
        all.extend(c.await.unwrap());
    }
    let distinct: HashSet<i64> = all.iter().copied().collect();
    assert_eq!(all.len(), 100, "every message claimed exactly once");
    assert_eq!(distinct.len(), 100);
}

#[rstest]
#[tokio::test]
async fn a_lease_hides_a_message_until_it_runs_out(#[values(SQLITE, POSTGRES)] db: Db) {
    let f = open(db).await;
    let inst = instance(f.store.as_ref(), "default").await;
    f.store.enqueue(inst.id, &message(1)).await.unwrap();
    let first = f.store.claim_outbox(NOW, Duration::minutes(1), 10).await.unwrap();
    assert_eq!(first.len(), 1);
    assert!(
        f.store.claim_outbox(NOW + Duration::seconds(59), Duration::minutes(1), 10).await.unwrap().is_empty()
    );
    // The claimer crashed: after the lease another worker takes the message.
    let again = f.store.claim_outbox(NOW + Duration::seconds(61), Duration::minutes(1), 10).await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].message_id, "<m1@test>");
    f.store.outbox_delivered(again[0].id, NOW).await.unwrap();
    assert!(
        f.store.claim_outbox(NOW + Duration::hours(1), Duration::minutes(1), 10).await.unwrap().is_empty()
    );
    let counts = f.store.outbox_counts().await.unwrap();
    assert_eq!((counts.pending, counts.sent, counts.dead), (0, 1, 0));
}

#[rstest]
#[tokio::test]
async fn a_failed_message_waits_for_its_retry_or_dies(#[values(SQLITE, POSTGRES)] db: Db) {
    let f = open(db).await;
    let inst = instance(f.store.as_ref(), "default").await;
    f.store.enqueue(inst.id, &message(1)).await.unwrap();
    f.store.enqueue(inst.id, &message(2)).await.unwrap();
    let batch = f.store.claim_outbox(NOW, Duration::minutes(1), 10).await.unwrap();
    f.store.outbox_failed(batch[0].id, 1, Some(NOW + Duration::seconds(30)), "smtp down").await.unwrap();
    f.store.outbox_failed(batch[1].id, 1, None, "bad address").await.unwrap();
    assert!(
        f.store.claim_outbox(NOW + Duration::seconds(29), Duration::minutes(1), 10).await.unwrap().is_empty()
    );
    let retry = f.store.claim_outbox(NOW + Duration::seconds(30), Duration::minutes(1), 10).await.unwrap();
    assert_eq!(retry.len(), 1);
    assert_eq!(retry[0].attempts, 1);
    let counts = f.store.outbox_counts().await.unwrap();
    assert_eq!((counts.pending, counts.dead), (1, 1));
}

#[rstest]
#[tokio::test]
async fn rate_limit_counting_is_atomic(#[values(SQLITE, POSTGRES)] db: Db) {
    let f = open(db).await;
    let hits: Vec<_> = (0..50)
        .map(|_| {
            let store = f.store.clone();
            tokio::spawn(async move { store.rate_limit_hit("k", NOW, NOW).await.unwrap() })
        })
        .collect();
    let mut seen = Vec::new();
    for h in hits {
        seen.push(h.await.unwrap());
    }
    seen.sort_unstable();
    assert_eq!(seen, (1..=50).collect::<Vec<u32>>());
    // Another window starts from one.
    assert_eq!(f.store.rate_limit_hit("k", NOW + Duration::minutes(10), NOW).await.unwrap(), 1);
}

#[rstest]
#[tokio::test]
async fn rows_of_one_instance_are_invisible_to_another(#[values(SQLITE, POSTGRES)] db: Db) {
    let f = open(db).await;
    let a = instance(f.store.as_ref(), "a").await;
    let b = instance(f.store.as_ref(), "b").await;
    let spec = onramp_core::ports::AppSpec {
        app: App {
            id: "app".into(),
            name: "A".into(),
            signup_url: "http://a.example/".into(),
            activation_token_in_response: true,
            schema_version: "ver_1".into(),
        },
        domains: vec![Domain {
            id: "dom_a".into(),
            title: "A".into(),
            description: String::new(),
            help: String::new(),
            allow_signup: true,
        }],
    };
    f.store.apply_app(a.id, &spec).await.unwrap();
    assert!(f.store.app(a.id, "app").await.unwrap().is_some());
    assert!(f.store.app(b.id, "app").await.unwrap().is_none());
    assert!(f.store.signup_domain(b.id, "dom_a").await.unwrap().is_none());
    let session = SessionRecord {
        id: "ses_1".into(),
        user_key: 1,
        user_public_id: "usr_1".into(),
        issued_at: NOW,
        expires_at: NOW + Duration::hours(1),
        revoked_at: None,
    };
    // A session row needs a user; none exists, so only the lookups are compared.
    assert!(f.store.session(b.id, &session.id).await.unwrap().is_none());
    assert!(!f.store.revoke_session(b.id, &session.id, NOW).await.unwrap());
}

#[rstest]
#[tokio::test]
async fn instances_are_created_once_listed_and_disabled(#[values(SQLITE, POSTGRES)] db: Db) {
    let f = open(db).await;
    let key = |k: &str| onramp_core::session::generate_key(k.into(), NOW).unwrap();
    let joe = f.store.create_instance("joe", key("k1")).await.unwrap();
    assert_eq!(f.store.signing_keys(joe.id).await.unwrap().len(), 1);
    let again = f.store.create_instance("joe", key("k2")).await.unwrap_err();
    assert!(matches!(again, onramp_core::ports::StoreError::Unique("instance")), "{again:?}");
    instance(f.store.as_ref(), "default").await;

    let names: Vec<String> = f.store.list_instances().await.unwrap().into_iter().map(|i| i.name).collect();
    assert_eq!(names, ["default", "joe"]);
    let summary = f.store.instance_summary("joe").await.unwrap().unwrap();
    assert_eq!((summary.status.as_str(), summary.apps, summary.users), ("active", 0, 0));

    assert!(f.store.set_instance_active("joe", false).await.unwrap());
    assert!(f.store.instance_by_name("joe").await.unwrap().is_none(), "a disabled instance serves nothing");
    assert_eq!(f.store.instance_summary("joe").await.unwrap().unwrap().status, "disabled");
    assert!(f.store.create_instance("joe", key("k3")).await.is_err(), "its name stays taken");
    assert!(f.store.set_instance_active("joe", true).await.unwrap());
    assert_eq!(f.store.instance_by_name("joe").await.unwrap(), Some(joe));
    assert!(!f.store.set_instance_active("nobody", false).await.unwrap());
}
