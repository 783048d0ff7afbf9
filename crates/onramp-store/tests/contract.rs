//! The store contract: the same behaviour from every backend, checked at the port.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use onramp_core::model::*;
use onramp_core::ports::{AppSpec, Store, StoreError, UniqueKey};
use rstest::rstest;
use std::collections::HashSet;
use time::Duration;

mod support;
use support::*;

#[rstest]
#[tokio::test]
async fn migrating_twice_changes_nothing(#[values(SQLITE, POSTGRES)] db: Db) {
    let f = open(db).await;
    f.store.migrate().await.unwrap();
    f.store.ping().await.unwrap();
}

#[rstest]
#[tokio::test]
async fn the_first_claim_of_a_cluster_setting_wins_for_every_node(#[values(SQLITE, POSTGRES)] db: Db) {
    let f = open(db).await;
    let other = onramp_store::connect(&f.url, &Default::default()).await.unwrap();
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let store = if i % 2 == 0 { f.store.clone() } else { other.clone() };
            tokio::spawn(async move {
                store.claim_setting("secret_key_check", &format!("value-{i}")).await.unwrap()
            })
        })
        .collect();
    let mut claims = Vec::new();
    for t in tasks {
        claims.push(t.await.unwrap());
    }
    assert!(claims.iter().all(|c| c == &claims[0]), "{claims:?}");
    assert_eq!(f.store.claim_setting("secret_key_check", "late").await.unwrap(), claims[0]);
    assert_eq!(f.store.claim_setting("another", "b").await.unwrap(), "b");
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

    // An operator's retry gives the dead letter a fresh start, once.
    let later = NOW + Duration::hours(2);
    let other = instance(f.store.as_ref(), "other").await;
    let audit = event(None, "outbox.retried", None);
    assert_eq!(f.store.requeue_dead_outbox(Some(other.id), later, &audit).await.unwrap(), 0);
    assert_eq!(f.store.requeue_dead_outbox(None, later, &audit).await.unwrap(), 1);
    assert_eq!(f.store.requeue_dead_outbox(None, later, &audit).await.unwrap(), 0);
    let trail = f.store.audit_events(&AuditFilter { limit: 10, ..Default::default() }).await.unwrap();
    assert_eq!(trail.items.len(), 1, "one entry, for the retry that changed something");
    assert_eq!(trail.items[0].detail["messages"], 1);
    assert_eq!(f.store.outbox_counts().await.unwrap().dead, 0);
    let revived: Vec<_> = f.store.claim_outbox(later, Duration::minutes(1), 10).await.unwrap();
    let revived = revived.iter().find(|m| m.message_id == "<m2@test>").expect("due again");
    assert_eq!(revived.attempts, 0);
    assert_eq!(revived.sealed_payload, vec![1, 2, 3]);
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
    assert!(!f.store.revoke_session(b.id, &session.id, NOW, &trail("session.revoked")).await.unwrap());
}

fn new_instance(naming: InstanceNaming, kid: &str) -> NewInstance {
    NewInstance {
        naming,
        key: onramp_core::session::generate_key(kid.into(), NOW).unwrap(),
        roles: vec![
            RoleSpec { name: "admin".into(), description: "Admins".into() },
            RoleSpec { name: "member".into(), description: "Members".into() },
        ],
        app: App {
            id: "app_default".into(),
            name: "Default".into(),
            signup_url: "http://{instance}.localhost:8080".into(),
            activation_token_in_response: false,
            schema_version: "ver_default".into(),
        },
        created_at: NOW,
    }
}

#[rstest]
#[tokio::test]
async fn instances_are_created_once_listed_and_disabled(#[values(SQLITE, POSTGRES)] db: Db) {
    let f = open(db).await;
    let joe =
        f.store.create_instance(&new_instance(InstanceNaming::Exact("joe".into()), "k1")).await.unwrap();
    assert_eq!(f.store.signing_keys(joe.id).await.unwrap().len(), 1);
    let app = f.store.app(joe.id, "app_default").await.unwrap().unwrap();
    assert_eq!(app.signup_url, "http://joe.localhost:8080", "the default app knows its instance's name");
    let again =
        f.store.create_instance(&new_instance(InstanceNaming::Exact("joe".into()), "k2")).await.unwrap_err();
    assert!(matches!(again, onramp_core::ports::StoreError::Unique(UniqueKey::InstanceName)), "{again:?}");
    instance(f.store.as_ref(), "default").await;

    // Until provisioning finishes, the instance serves nothing and cannot be switched on.
    assert_eq!(f.store.instance_summary("joe").await.unwrap().unwrap().status, "provisioning");
    assert!(f.store.instance_by_name("joe").await.unwrap().is_none());
    assert!(!f.store.set_instance_active("joe", true, Some(&trail("instance.disabled"))).await.unwrap());
    f.store.finish_provisioning(joe.id, "sqlite:x", None, &trail("instance.provisioned")).await.unwrap();
    assert!(
        f.store.finish_provisioning(joe.id, "sqlite:x", None, &trail("instance.provisioned")).await.is_err(),
        "only once"
    );

    let names: Vec<String> = f.store.list_instances().await.unwrap().into_iter().map(|i| i.name).collect();
    assert_eq!(names, ["default", "joe"]);
    let summary = f.store.instance_summary("joe").await.unwrap().unwrap();
    assert_eq!((summary.status.as_str(), summary.apps, summary.users), ("active", 1, 0));
    assert_eq!(
        (summary.id, summary.database.as_deref(), summary.owner_email),
        (joe.id, Some("sqlite:x"), None)
    );

    assert!(f.store.set_instance_active("joe", false, Some(&trail("instance.disabled"))).await.unwrap());
    assert!(f.store.instance_by_name("joe").await.unwrap().is_none(), "a disabled instance serves nothing");
    assert_eq!(f.store.instance_summary("joe").await.unwrap().unwrap().status, "disabled");
    assert!(
        f.store.create_instance(&new_instance(InstanceNaming::Exact("joe".into()), "k3")).await.is_err(),
        "its name stays taken"
    );
    assert!(!f.store.discard_instance(joe.id).await.is_ok_and(|d| d), "a live instance is never discarded");
    assert!(f.store.set_instance_active("joe", true, Some(&trail("instance.disabled"))).await.unwrap());
    assert_eq!(f.store.instance_by_name("joe").await.unwrap(), Some(joe));
    assert!(!f.store.set_instance_active("nobody", false, Some(&trail("instance.disabled"))).await.unwrap());
}

fn fast_track(email: &str, base: &str, n: usize) -> NewFastTrack {
    let user = |tag: &str| NewUser {
        public_id: format!("usr_{tag}{n}"),
        uuid: uuid::Uuid::from_u128((n as u128) << 8 | u128::from(tag == "a")),
        email: email.into(),
        email_canonical: email.to_lowercase(),
        username: None,
        username_canonical: None,
        name: "Joe Blow".into(),
        language: "en".into(),
        status: if tag == "o" { UserStatus::Unconfirmed } else { UserStatus::Active },
        password_hash: format!("$argon2id$hash{n}"),
        metadata: None,
    };
    NewFastTrack {
        audit: trail("fast_track.provisioned"),
        instance: new_instance(
            InstanceNaming::FirstFree { base: base.into(), avoid: vec!["taken-by-operator".into()] },
            &format!("k{n}"),
        ),
        owner: user("o"),
        admin: user("a"),
        profile: UserProfile {
            first_name: Some("Joe".into()),
            last_name: Some("Blow".into()),
            company: Some("Acme".into()),
            ..Default::default()
        },
        admin_role: "admin".into(),
        login: NewVerification {
            purpose: Purpose::FastTrackLogin,
            secret_hash: format!("guid{n}"),
            expires_at: NOW + Duration::minutes(5),
        },
        claim: NewVerification {
            purpose: Purpose::FastTrackClaim,
            secret_hash: format!("claim{n}"),
            expires_at: NOW + Duration::hours(72),
        },
    }
}

/// A FastTrack that went live, as the core leaves it.
async fn live_fast_track(store: &dyn Store, email: &str, base: &str, n: usize) -> Provisioned {
    instance(store, PLATFORM_INSTANCE).await;
    let p = store.provision_fast_track(&fast_track(email, base, n)).await.unwrap();
    store.finish_provisioning(p.instance.id, "db", None, &trail("instance.provisioned")).await.unwrap();
    p
}

#[rstest]
#[tokio::test]
async fn a_fast_track_claim_is_seen_confirmed_or_released_once(#[values(SQLITE, POSTGRES)] db: Db) {
    let f = open(db).await;
    let store = f.store.as_ref();
    let platform = instance(store, PLATFORM_INSTANCE).await;
    let joe = live_fast_track(store, "joe@a.example", "joe", 1).await;
    let ann = live_fast_track(store, "ann@a.example", "ann", 2).await;
    assert_eq!(
        live_fast_track(store, "x@a.example", "taken-by-operator", 3).await.instance.name,
        "taken-by-operator-2",
        "a name to avoid is never given"
    );

    // Looking changes nothing and may be repeated; unknown and wrong-purpose secrets are not found.
    let seen = store.fast_track_claim("claim1", None, NOW).await.unwrap().unwrap();
    assert_eq!(
        (seen.owner_key, seen.email.as_str(), seen.instance.as_deref()),
        (joe.owner_key, "joe@a.example", Some("joe"))
    );
    assert_eq!(seen.expires_at, NOW + Duration::hours(72));
    assert!(store.fast_track_claim("claim1", None, NOW).await.unwrap().is_ok());
    assert_eq!(store.fast_track_claim("nope", None, NOW).await.unwrap(), Err(RedeemError::NotFound));
    assert_eq!(store.fast_track_claim("guid1", None, NOW).await.unwrap(), Err(RedeemError::NotFound));
    assert_eq!(
        store.fast_track_claim("claim1", None, NOW + Duration::hours(72)).await.unwrap(),
        Err(RedeemError::Expired)
    );

    // Confirm: the owner becomes active; the secret is spent.
    store.fast_track_claim("claim1", Some(ClaimAnswer::Confirm), NOW).await.unwrap().unwrap();
    let owner = store.user_view(platform.id, joe.owner_key).await.unwrap().unwrap();
    assert_eq!(owner.status, UserStatus::Active);
    assert_eq!(
        store.fast_track_claim("claim1", Some(ClaimAnswer::Release), NOW).await.unwrap(),
        Err(RedeemError::AlreadyUsed)
    );

    // Release: ann's instance is disabled with its sessions revoked, ann's owner row is gone.
    let session = SessionRecord {
        id: "s-ann".into(),
        user_key: ann.admin_key,
        user_public_id: "usr_a2".into(),
        issued_at: NOW,
        expires_at: NOW + Duration::hours(1),
        revoked_at: None,
    };
    store.create_session(ann.instance.id, &session, &trail("login.succeeded")).await.unwrap();
    let released = store.fast_track_claim("claim2", Some(ClaimAnswer::Release), NOW).await.unwrap().unwrap();
    assert_eq!(released.instance.as_deref(), Some("ann"));
    let summary = store.instance_summary("ann").await.unwrap().unwrap();
    assert_eq!((summary.status.as_str(), summary.owner_email), ("disabled", None));
    assert!(summary.status_detail.unwrap().contains("not theirs"));
    assert!(store.instance_by_name("ann").await.unwrap().is_none());
    assert!(store.user_view(platform.id, ann.owner_key).await.unwrap().is_none());
    let live = store.session(ann.instance.id, "s-ann").await.unwrap().unwrap();
    assert!(live.revoked_at.is_some(), "its sessions are revoked");
    // The address may FastTrack again.
    assert_eq!(live_fast_track(store, "ann@a.example", "ann", 4).await.instance.name, "ann-2");
}

#[rstest]
#[tokio::test]
async fn unconfirmed_owners_are_released_after_their_time(#[values(SQLITE, POSTGRES)] db: Db) {
    let f = open(db).await;
    let store = f.store.as_ref();
    instance(store, PLATFORM_INSTANCE).await;
    let joe = live_fast_track(store, "joe@a.example", "joe", 1).await;
    live_fast_track(store, "ann@a.example", "ann", 2).await;
    live_fast_track(store, "eve@a.example", "eve", 3).await;
    store.fast_track_claim("claim1", Some(ClaimAnswer::Confirm), NOW).await.unwrap().unwrap();

    // Only owners created before the cutoff; only the email asked for, when one is.
    assert!(store.release_unconfirmed_owners(NOW, None, NOW, 10).await.unwrap().is_empty());
    let later = NOW + Duration::hours(73);
    let cutoff = NOW + Duration::seconds(1);
    assert_eq!(
        store.release_unconfirmed_owners(cutoff, Some("eve@a.example"), later, 10).await.unwrap(),
        ["eve"]
    );
    assert_eq!(store.release_unconfirmed_owners(cutoff, None, later, 10).await.unwrap(), ["ann"]);
    assert!(store.release_unconfirmed_owners(cutoff, None, later, 10).await.unwrap().is_empty());
    // The confirmed owner keeps its instance.
    assert_eq!(store.instance_by_name("joe").await.unwrap().map(|i| i.id), Some(joe.instance.id));
}

#[rstest]
#[tokio::test]
async fn fast_track_writes_owner_instance_and_admin_together(#[values(SQLITE, POSTGRES)] db: Db) {
    let f = open(db).await;
    let platform = instance(f.store.as_ref(), PLATFORM_INSTANCE).await;
    let first = f.store.provision_fast_track(&fast_track("joe@a.example", "joe", 1)).await.unwrap();
    assert_eq!(first.instance.name, "joe");
    let second = f.store.provision_fast_track(&fast_track("joe@b.example", "joe", 2)).await.unwrap();
    assert_eq!(second.instance.name, "joe-2", "a collision gets a suffix");
    let taken = f.store.provision_fast_track(&fast_track("JOE@a.example", "joe", 3)).await.unwrap_err();
    assert!(matches!(taken, onramp_core::ports::StoreError::Unique(UniqueKey::Email)), "{taken:?}");
    let reserved = f.store.provision_fast_track(&fast_track("admin@a.example", "admin", 4)).await.unwrap();
    assert_eq!(reserved.instance.name, "admin-2", "a reserved name is never taken");

    // The owner lives in `platform`, the admin in the instance; same hash, profile, roles.
    let owner = f.store.user_view(platform.id, first.owner_key).await.unwrap().unwrap();
    let admin = f.store.user_view(first.instance.id, first.admin_key).await.unwrap().unwrap();
    assert_eq!((owner.email.as_str(), owner.status), ("joe@a.example", UserStatus::Unconfirmed));
    assert_eq!(admin.roles, ["admin"]);
    assert!(owner.roles.is_empty());
    assert_eq!(admin.profile.company.as_deref(), Some("Acme"));
    assert!(f.store.user_view(platform.id, first.admin_key).await.unwrap().is_none(), "no crossing");
    let login = f
        .store
        .login_record(first.instance.id, &LoginLookup::EmailCanonical("joe@a.example".into()))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(login.password_hash, "$argon2id$hash1");
    let summary = f.store.instance_summary("joe").await.unwrap().unwrap();
    assert_eq!(
        (summary.status.as_str(), summary.owner_email.as_deref()),
        ("provisioning", Some("joe@a.example"))
    );

    // The login secret: once, in its own instance only, never after it expires.
    assert_eq!(
        f.store.redeem_secret(second.instance.id, Purpose::FastTrackLogin, "guid1", NOW).await.unwrap(),
        Err(RedeemError::NotFound)
    );
    assert_eq!(
        f.store.redeem_secret(first.instance.id, Purpose::Activation, "guid1", NOW).await.unwrap(),
        Err(RedeemError::NotFound),
        "a secret of one purpose never serves another"
    );
    assert_eq!(
        f.store
            .redeem_secret(second.instance.id, Purpose::FastTrackLogin, "guid2", NOW + Duration::minutes(5))
            .await
            .unwrap(),
        Err(RedeemError::Expired)
    );
    let redeemed =
        f.store.redeem_secret(first.instance.id, Purpose::FastTrackLogin, "guid1", NOW).await.unwrap();
    assert_eq!(redeemed, Ok((first.admin_key, admin.public_id.clone())));
    assert_eq!(
        f.store.redeem_secret(first.instance.id, Purpose::FastTrackLogin, "guid1", NOW).await.unwrap(),
        Err(RedeemError::AlreadyUsed)
    );

    // Undo: the instance, its rows and its owner go; the name and the email are free again.
    f.store.fail_provisioning(first.instance.id, "webhook said no").await.unwrap();
    let failed = f.store.instance_summary("joe").await.unwrap().unwrap();
    assert_eq!(
        (failed.status.as_str(), failed.status_detail.as_deref()),
        ("provisioning_failed", Some("webhook said no"))
    );
    assert!(f.store.discard_instance(first.instance.id).await.unwrap());
    assert!(!f.store.discard_instance(first.instance.id).await.unwrap());
    assert!(f.store.instance_summary("joe").await.unwrap().is_none());
    assert!(f.store.user_view(platform.id, first.owner_key).await.unwrap().is_none(), "no orphaned owner");
    let again = f.store.provision_fast_track(&fast_track("joe@a.example", "joe", 5)).await.unwrap();
    assert_eq!(again.instance.name, "joe");
    assert!(f.store.instance_summary("joe-2").await.unwrap().is_some(), "the other instance is untouched");
}

#[rstest]
#[tokio::test]
async fn concurrent_fast_tracks_of_one_base_get_distinct_names(#[values(SQLITE, POSTGRES)] db: Db) {
    let f = open(db).await;
    instance(f.store.as_ref(), PLATFORM_INSTANCE).await;
    let tasks: Vec<_> = (0..20)
        .map(|n| {
            let store = f.store.clone();
            tokio::spawn(async move {
                store.provision_fast_track(&fast_track(&format!("joe@{n}.example"), "joe", n)).await
            })
        })
        .collect();
    let mut names = HashSet::new();
    for t in tasks {
        names.insert(t.await.unwrap().unwrap().instance.name);
    }
    assert_eq!(names.len(), 20);
    let expected: HashSet<String> =
        (0..20).map(|n| onramp_core::instance_name::candidate("joe", n)).collect();
    assert_eq!(names, expected, "the first twenty candidates, each once");
}

#[rstest]
#[tokio::test]
async fn each_instance_gets_its_own_database_with_the_init_sql(#[values(SQLITE, POSTGRES)] db: Db) {
    let f = open(db).await;
    let joe =
        f.store.create_instance(&new_instance(InstanceNaming::Exact("joe".into()), "k1")).await.unwrap();
    let init = "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL);
                INSERT INTO notes (id, body) VALUES (1, 'hello');";
    let location = f.store.create_instance_database(&joe, Some(init)).await.unwrap();
    let count_notes = |location: String, url: String| async move {
        match db {
            Db::Sqlite => {
                let path = location.strip_prefix("sqlite:").unwrap().to_owned();
                let pool = sqlx::SqlitePool::connect(&format!("sqlite://{path}")).await?;
                sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM notes").fetch_one(&pool).await
            }
            Db::Postgres => {
                let schema = location.strip_prefix("postgres:schema:").unwrap().to_owned();
                let pool = sqlx::PgPool::connect(&url).await?;
                sqlx::query_scalar::<_, i64>(&format!("SELECT COUNT(*) FROM {schema}.notes"))
                    .fetch_one(&pool)
                    .await
            }
        }
    };
    assert_eq!(count_notes(location.clone(), f.url.clone()).await.unwrap(), 1);
    // Again: replaced, not doubled.
    let location = f.store.create_instance_database(&joe, Some(init)).await.unwrap();
    assert_eq!(count_notes(location.clone(), f.url.clone()).await.unwrap(), 1);
    f.store.drop_instance_database(&joe).await.unwrap();
    assert!(count_notes(location, f.url.clone()).await.is_err(), "dropped");

    // Init SQL that fails leaves no database behind.
    let bad = f.store.create_instance_database(&joe, Some("CREATE TABLE x (; nonsense")).await.unwrap_err();
    assert!(bad.to_string().contains("init SQL"), "{bad}");
    match db {
        Db::Sqlite => assert!(!f._dir.path().join("instances/joe.sqlite3").exists()),
        Db::Postgres => {
            let pool = sqlx::PgPool::connect(&f.url).await.unwrap();
            let schemas: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM information_schema.schemata WHERE schema_name LIKE 'instance_%'",
            )
            .fetch_one(&pool)
            .await
            .unwrap();
            assert_eq!(schemas, 0);
        }
    }
}

#[rstest]
#[tokio::test]
async fn app_settings_keep_browser_origins_per_app_and_instance(#[values(SQLITE, POSTGRES)] db: Db) {
    let f = open(db).await;
    let store = f.store.as_ref();
    let (a, b) = (instance(store, "a").await, instance(store, "b").await);
    let app = |id: &str, url: &str| AppSpec {
        app: App {
            id: id.into(),
            name: id.into(),
            signup_url: url.into(),
            activation_token_in_response: true,
            schema_version: "ver_1".into(),
        },
        domains: vec![],
    };
    store.apply_app(a.id, &app("app_one", "https://one.example/activate")).await.unwrap();
    store.apply_app(a.id, &app("app_two", "https://two.example/activate")).await.unwrap();
    store.apply_app(b.id, &app("app_one", "https://b.example/activate")).await.unwrap();
    // An app with no settings row yet: its signup URL, no origins, partner calls closed.
    let origins = store.app_origins(a.id).await.unwrap();
    assert_eq!(origins.len(), 2);
    assert_eq!(origins[0].app_id, "app_one");
    assert!(origins.iter().all(|o| o.allowed_origins.is_empty() && !o.browser_partner_calls));
    let settings = AppSettings {
        default_contract: None,
        ext_key_type: Some(3),
        allowed_origins: vec!["https://spa.example".into(), "https://*.example.org".into()],
        browser_partner_calls: true,
        reads_accounts_of: vec!["app_one".into()],
    };
    store.set_app_settings(a.id, "app_two", &settings, None).await.unwrap();
    assert_eq!(store.app_settings(a.id, "app_two").await.unwrap(), settings);
    let origins = store.app_origins(a.id).await.unwrap();
    let two = origins.iter().find(|o| o.app_id == "app_two").unwrap();
    assert_eq!(two.allowed_origins, settings.allowed_origins);
    assert!(two.browser_partner_calls);
    assert_eq!(two.signup_url, "https://two.example/activate");
    // Instance b's app of the same id is untouched.
    let b_origins = store.app_origins(b.id).await.unwrap();
    assert_eq!(b_origins.len(), 1);
    assert!(b_origins[0].allowed_origins.is_empty() && !b_origins[0].browser_partner_calls);
}

#[rstest]
#[tokio::test]
async fn instance_settings_and_roles_are_kept_per_instance(#[values(SQLITE, POSTGRES)] db: Db) {
    let f = open(db).await;
    let store = f.store.as_ref();
    let (a, b) = (instance(store, "a").await, instance(store, "b").await);
    // Nothing stored yet: the defaults (registration closed).
    assert_eq!(store.instance_settings(a.id).await.unwrap(), UserServiceSettings::default());
    let settings = UserServiceSettings {
        open_registration: true,
        open_reg_role: Some("member".into()),
        open_reg_email_service: Some("default".into()),
        open_reg_email_template: None,
        allow_keyless: true,
        default_language: Some("de".into()),
    };
    store.set_instance_settings(a.id, &settings, None).await.unwrap();
    assert_eq!(store.instance_settings(a.id).await.unwrap(), settings);
    let changed = UserServiceSettings { open_registration: false, ..settings.clone() };
    store.set_instance_settings(a.id, &changed, Some(&trail("instance.settings_changed"))).await.unwrap();
    assert_eq!(store.instance_settings(a.id).await.unwrap(), changed, "a second write replaces the first");
    assert_eq!(store.instance_settings(b.id).await.unwrap(), UserServiceSettings::default());
    // Roles are created once, however often they are ensured.
    let member = RoleSpec { name: "member".into(), description: String::new() };
    store.ensure_roles(a.id, std::slice::from_ref(&member), NOW).await.unwrap();
    store.ensure_roles(a.id, &[member], NOW).await.unwrap();
}

fn api_key(id: &str, app: &str, hash: &str, source: &'static str) -> NewApiKey {
    NewApiKey {
        id: id.into(),
        app_id: app.into(),
        secret_hash: hash.into(),
        prefix: hash.chars().take(8).collect(),
        label: format!("label {id}"),
        source,
        created_at: NOW,
    }
}

#[rstest]
#[tokio::test]
async fn api_keys_are_found_by_hash_listed_revoked_and_synced(#[values(SQLITE, POSTGRES)] db: Db) {
    let f = open(db).await;
    let store = f.store.as_ref();
    let joe = live_fast_track(store, "joe@a.example", "joe", 1).await.instance;
    let ann = live_fast_track(store, "ann@a.example", "ann", 2).await.instance;
    store
        .create_api_key(joe.id, &api_key("key_cli", "app_default", "hash-cli", api_key_source::CLI), None)
        .await
        .unwrap();
    let found = store.api_key_by_hash(joe.id, "hash-cli").await.unwrap().unwrap();
    assert_eq!(
        (found.id.as_str(), found.app_id.as_str(), found.source.as_str()),
        ("key_cli", "app_default", "cli")
    );
    assert_eq!(found.revoked_at, None);
    assert!(store.api_key_by_hash(ann.id, "hash-cli").await.unwrap().is_none(), "another instance's key");

    // The configuration's keys follow the file: added, kept, and revoked when gone from it.
    let config = |ids: &[&str]| -> Vec<NewApiKey> {
        ids.iter()
            .map(|id| api_key(id, "app_default", &format!("hash-{id}"), api_key_source::CONFIG))
            .collect()
    };
    store.sync_config_api_keys(joe.id, "app_default", &config(&["c1", "c2"]), NOW).await.unwrap();
    store
        .sync_config_api_keys(joe.id, "app_default", &config(&["c2"]), NOW + Duration::hours(1))
        .await
        .unwrap();
    let keys = store.list_api_keys(joe.id).await.unwrap();
    let live: HashSet<&str> = keys.iter().filter(|k| k.revoked_at.is_none()).map(|k| k.id.as_str()).collect();
    assert_eq!(
        live,
        HashSet::from(["key_cli", "c2"]),
        "the CLI's key is the file's business no more than c1"
    );
    assert!(store.api_key_by_hash(joe.id, "hash-c1").await.unwrap().unwrap().revoked_at.is_some());

    // Revoking: once, in its own instance only.
    assert!(!store.revoke_api_key(ann.id, "key_cli", NOW, &trail("api_key.revoked")).await.unwrap());
    assert!(store.revoke_api_key(joe.id, "key_cli", NOW, &trail("api_key.revoked")).await.unwrap());
    assert!(
        !store.revoke_api_key(joe.id, "key_cli", NOW, &trail("api_key.revoked")).await.unwrap(),
        "already revoked"
    );
    assert_eq!(store.api_key_by_hash(joe.id, "hash-cli").await.unwrap().unwrap().revoked_at, Some(NOW));
}

#[rstest]
#[tokio::test]
async fn a_user_is_found_by_email_given_secrets_and_a_new_password(#[values(SQLITE, POSTGRES)] db: Db) {
    let f = open(db).await;
    let store = f.store.as_ref();
    let joe = live_fast_track(store, "Joe@A.example", "joe", 1).await;
    let inst = joe.instance.id;
    // One lookup for a known and an unknown address; the user comes with its roles.
    let user = store.user_by_email(inst, "joe@a.example").await.unwrap().unwrap();
    assert_eq!(
        (user.key, user.email.as_str(), user.roles.clone()),
        (joe.admin_key, "Joe@A.example", vec!["admin".to_owned()])
    );
    assert!(store.user_by_email(inst, "nobody@a.example").await.unwrap().is_none());
    assert!(store.user_by_email(joe.instance.id, "JOE@A.EXAMPLE").await.unwrap().is_none(), "canonical only");

    // A secret and the mail that carries it, together; the secret then redeems once.
    let reset = NewVerification {
        purpose: Purpose::PasswordReset,
        secret_hash: "reset-1".into(),
        expires_at: NOW + Duration::hours(1),
    };
    let before = store.outbox_counts().await.unwrap().pending;
    store.issue_secret(inst, joe.admin_key, &reset, &message(7)).await.unwrap();
    assert_eq!(store.outbox_counts().await.unwrap().pending, before + 1);
    let redeemed = store.redeem_secret(inst, Purpose::PasswordReset, "reset-1", NOW).await.unwrap();
    assert_eq!(redeemed.map(|(key, _)| key), Ok(joe.admin_key));

    // A new hash replaces the old for logins.
    store.set_password_hash(inst, joe.admin_key, "$argon2id$new").await.unwrap();
    let login = store
        .login_record(inst, &LoginLookup::EmailCanonical("joe@a.example".into()))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(login.password_hash, "$argon2id$new");
}

#[rstest]
#[tokio::test]
async fn the_newest_failures_are_listed_with_their_last_error(#[values(SQLITE, POSTGRES)] db: Db) {
    let f = open(db).await;
    let store = f.store.as_ref();
    let inst = instance(store, "default").await;
    for n in 1..=3 {
        store.enqueue(inst.id, &message(n)).await.unwrap();
    }
    assert!(store.outbox_failures(10).await.unwrap().is_empty(), "nothing failed yet");
    let batch = store.claim_outbox(NOW, Duration::minutes(1), 10).await.unwrap();
    store
        .outbox_failed(batch[0].id, 1, Some(NOW + Duration::minutes(1)), "TLS (a configuration error)")
        .await
        .unwrap();
    store.outbox_failed(batch[1].id, 5, None, "550 no such user").await.unwrap();
    store.outbox_delivered(batch[2].id, NOW).await.unwrap();
    let failures = store.outbox_failures(10).await.unwrap();
    assert_eq!(failures.len(), 2, "{failures:?}");
    let by_id = |id: i64| failures.iter().find(|f| f.id == id).unwrap();
    let first = by_id(batch[0].id);
    assert_eq!(
        (first.status.as_str(), first.attempts, first.last_error.as_str()),
        ("pending", 1, "TLS (a configuration error)")
    );
    assert_eq!(by_id(batch[1].id).status, "dead");
    assert_eq!(store.outbox_failures(1).await.unwrap().len(), 1, "at most the limit");
}

#[rstest]
#[tokio::test]
async fn contracts_and_their_accounts(#[values(SQLITE, POSTGRES)] db: Db) {
    let f = open(db).await;
    let store = f.store.as_ref();
    let inst = app_with_domain(store, "default").await;
    assert_eq!(store.app_domains(inst.id, "app_demo").await.unwrap()[0].id, "dom_1");
    let field = |name: &str, kind: FieldType| ContractField {
        name: name.into(),
        kind,
        required: true,
        unique: name == "email",
        min_length: None,
        max_length: None,
        pattern: None,
        verify: None,
    };
    let basic = Contract { id: "basic".into(), fields: vec![field("email", FieldType::Email)] };
    store.put_contract(inst.id, "app_demo", &basic, None).await.unwrap();
    let wider = Contract {
        id: "basic".into(),
        fields: vec![field("email", FieldType::Email), field("mobile", FieldType::Phone)],
    };
    store.put_contract(inst.id, "app_demo", &wider, Some(&trail("contract.saved"))).await.unwrap();
    assert_eq!(store.contract(inst.id, "app_demo", "basic").await.unwrap(), Some(wider.clone()), "replaced");
    assert_eq!(store.contracts(inst.id, "app_demo").await.unwrap(), vec![wider]);
    assert!(store.contract(inst.id, "app_demo", "other").await.unwrap().is_none());

    // An account with a texted code; a second with the same unique value finds the first.
    let account = |n: usize, sms: bool| NewContractAccount {
        audit: trail("user.signed_up"),
        user: person(
            n,
            &format!("dp{n}@a.example"),
            if sms { UserStatus::Pending } else { UserStatus::Active },
        ),
        app_id: "app_demo".into(),
        profile: r#"{"email":"dp@a.example"}"#.into(),
        phone: Some("+31201234567".into()),
        unique: vec![("email".into(), "dp@a.example".into())],
        ext_key: Some((12, format!("ext-{n}"))),
        sms: sms.then(|| (secret(Purpose::Sms, &format!("sms-{n}")), message(n))),
        created_at: NOW,
    };
    let ContractOutcome::Created { dp_key } =
        store.create_contract_account(inst.id, &account(1, true)).await.unwrap()
    else {
        panic!("created");
    };
    let again = store.create_contract_account(inst.id, &account(2, false)).await.unwrap();
    assert_eq!(again, ContractOutcome::Exists { dp_key, field: "email".into(), status: UserStatus::Pending });
    let read = store.contract_account(inst.id, dp_key).await.unwrap().unwrap();
    assert_eq!(
        (read.app_id.as_deref(), read.status, read.ext_keys.clone()),
        (Some("app_demo"), UserStatus::Pending, vec![(12, "ext-1".to_owned())])
    );
    assert!(store.contract_account(inst.id, dp_key + 1000).await.unwrap().is_none());

    // A wrong code counts; a resent code inherits the count; the right one activates.
    assert_eq!(
        store.verify_sms(inst.id, dp_key, "wrong", NOW, 3, &trail("user.activated")).await.unwrap(),
        Err(SmsCodeError::Wrong)
    );
    assert!(
        store.resend_sms(inst.id, dp_key, &secret(Purpose::Sms, "sms-new"), &message(9), 3).await.unwrap()
    );
    assert_eq!(
        store.verify_sms(inst.id, dp_key, "sms-1", NOW, 3, &trail("user.activated")).await.unwrap(),
        Err(SmsCodeError::Wrong),
        "the old code is void"
    );
    assert_eq!(
        store.verify_sms(inst.id, dp_key, "sms-new", NOW, 3, &trail("user.activated")).await.unwrap(),
        Ok(())
    );
    assert_eq!(store.contract_account(inst.id, dp_key).await.unwrap().unwrap().status, UserStatus::Active);
    assert_eq!(
        store.verify_sms(inst.id, dp_key, "sms-new", NOW, 3, &trail("user.activated")).await.unwrap(),
        Err(SmsCodeError::NoCode)
    );
    assert!(
        !store.resend_sms(inst.id, dp_key, &secret(Purpose::Sms, "sms-3"), &message(10), 3).await.unwrap(),
        "active: nothing to resend"
    );
}

/// A `/v1` signup of person `n` in app `app_demo`'s domain `dom_1`, with its activation secret.
fn new_signup(n: usize, email: &str, token: &str) -> NewSignup {
    NewSignup {
        audit: trail("user.signed_up"),
        account: NewAccount {
            public_id: format!("acc_{n}"),
            title: "Acme".into(),
            country: "NL".into(),
            app_id: "app_demo".into(),
            domain_id: "dom_1".into(),
            version_id: "ver_1".into(),
        },
        user: person(n, email, UserStatus::Pending),
        verification: secret(Purpose::Activation, token),
        message: message(n),
        // A pending signup whose token was issued after this is left alone.
        replace_pending_issued_before: NOW - Duration::minutes(1),
    }
}

/// Run `sql` on the store's database over a connection of its own.
async fn run_sql(db: Db, url: &str, sql: &str) {
    use sqlx::Connection;
    match db {
        Db::Sqlite => {
            let mut conn = sqlx::SqliteConnection::connect(url).await.unwrap();
            sqlx::raw_sql(sql).execute(&mut conn).await.unwrap();
        }
        Db::Postgres => {
            let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
            sqlx::raw_sql(sql).execute(&mut conn).await.unwrap();
        }
    }
}

#[rstest]
#[tokio::test]
async fn an_activation_that_fails_midway_changes_nothing(#[values(SQLITE, POSTGRES)] db: Db) {
    let f = open(db).await;
    let store = f.store.as_ref();
    let inst = app_with_domain(store, "default").await;
    store.create_signup(inst.id, &new_signup(1, "mid@a.example", "m1")).await.unwrap();
    // The audit entry, written after the secret is looked at and before it is used, fails.
    let (refuse, allow) = match db {
        Db::Sqlite => (
            "CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_log BEGIN SELECT RAISE(ABORT, 'refused'); END",
            "DROP TRIGGER refuse_audit",
        ),
        Db::Postgres => (
            "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'refused'; END $$;
             CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_log FOR EACH ROW EXECUTE FUNCTION refuse()",
            "DROP TRIGGER refuse_audit ON audit_log",
        ),
    };
    run_sql(db, &f.url, refuse).await;
    let failed = store.activate_signup(inst.id, "m1", NOW, &trail("user.activated")).await;
    assert!(failed.is_err(), "{failed:?}");
    let user = store.user_by_email(inst.id, "mid@a.example").await.unwrap().unwrap();
    assert_eq!(user.status, UserStatus::Pending, "nothing of the activation was kept");
    // The writer is not left inside the failed transaction, and the secret was not used.
    run_sql(db, &f.url, allow).await;
    store.activate_signup(inst.id, "m1", NOW, &trail("user.activated")).await.unwrap().unwrap();
    let user = store.user_by_email(inst.id, "mid@a.example").await.unwrap().unwrap();
    assert_eq!(user.status, UserStatus::Active);
}

#[rstest]
#[tokio::test]
async fn an_activation_its_caller_abandons_completes_whole(#[values(SQLITE, POSTGRES)] db: Db) {
    let f = open(db).await;
    let store = f.store.as_ref();
    let inst = app_with_domain(store, "default").await;
    store.create_signup(inst.id, &new_signup(1, "gone@a.example", "g1")).await.unwrap();
    // Polled once and dropped, as when the client disconnects or the request times out.
    let audit = trail("user.activated");
    let mut abandoned = store.activate_signup(inst.id, "g1", NOW, &audit);
    let _ = abandoned.as_mut().poll(&mut std::task::Context::from_waker(std::task::Waker::noop()));
    drop(abandoned);
    let mut status = UserStatus::Pending;
    for _ in 0..200 {
        status = store.user_by_email(inst.id, "gone@a.example").await.unwrap().unwrap().status;
        if status == UserStatus::Active {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(status, UserStatus::Active, "the activation ran to its end");
    // The writer is not left inside a transaction: the next signup and activation are kept.
    store.create_signup(inst.id, &new_signup(2, "next@a.example", "g2")).await.unwrap();
    store.activate_signup(inst.id, "g2", NOW, &trail("user.activated")).await.unwrap().unwrap();
    let next = store.user_by_email(inst.id, "next@a.example").await.unwrap().unwrap();
    assert_eq!(next.status, UserStatus::Active);
}

#[rstest]
#[tokio::test]
async fn a_signup_is_created_replaced_or_refused_and_activated_once(#[values(SQLITE, POSTGRES)] db: Db) {
    let f = open(db).await;
    let store = f.store.as_ref();
    let inst = app_with_domain(store, "default").await;
    let signup = new_signup;
    assert_eq!(
        store.create_signup(inst.id, &signup(1, "su@a.example", "t1")).await.unwrap(),
        SignupOutcome::Created
    );
    // The same address again, its first mail sent only now: nothing written.
    assert_eq!(
        store.create_signup(inst.id, &signup(2, "su@a.example", "t2")).await.unwrap(),
        SignupOutcome::PendingRecently
    );
    // Later, it replaces the pending one, whose token dies.
    let mut later = signup(3, "su@a.example", "t3");
    later.replace_pending_issued_before = NOW + Duration::hours(1);
    assert_eq!(store.create_signup(inst.id, &later).await.unwrap(), SignupOutcome::ReplacedPending);
    assert_eq!(
        store.activate_signup(inst.id, "t1", NOW, &trail("user.activated")).await.unwrap(),
        Err(RedeemError::NotFound)
    );
    assert_eq!(
        store
            .activate_signup(inst.id, "t3", NOW + Duration::hours(24), &trail("user.activated"))
            .await
            .unwrap(),
        Err(RedeemError::Expired),
        "a token is dead at its expiry"
    );
    // A second live activation secret of the same user dies when the first is used.
    let pending = store.user_by_email(inst.id, "su@a.example").await.unwrap().unwrap();
    assert_eq!(pending.status, UserStatus::Pending);
    store.issue_secret(inst.id, pending.key, &secret(Purpose::Activation, "t3b"), &message(6)).await.unwrap();
    let published = NewAuditEvent { publish: true, ..trail("user.activated") };
    let done = store.activate_signup(inst.id, "t3", NOW, &published).await.unwrap().unwrap();
    assert_eq!((done.domain_id.as_str(), done.version_id.as_str()), ("dom_1", "ver_1"));
    // The replaced signup's account and user, kept by the signup that replaced it.
    assert_eq!((done.account_id.as_str(), done.user_id.as_str()), ("acc_1", "usr_p1"));
    // The audit entry was written with the activation and names the user, now active.
    let events = store.unpublished_events(10).await.unwrap();
    let activated = events.iter().find(|e| e.kind == "user.activated").expect("the activation's entry");
    let user = activated.user.as_ref().expect("names its user");
    assert_eq!((user.public_id.as_str(), user.status.as_str()), ("usr_p1", "active"));
    assert_eq!(events.iter().filter(|e| e.kind == "user.activated").count(), 1);
    assert_eq!(
        store.activate_signup(inst.id, "t3b", NOW, &published).await.unwrap(),
        Err(RedeemError::NotFound),
        "voided with the activation"
    );
    assert_eq!(
        store.activate_signup(inst.id, "t3", NOW, &published).await.unwrap(),
        Err(RedeemError::AlreadyUsed)
    );
    let entries = store.unpublished_events(10).await.unwrap();
    assert_eq!(entries.iter().filter(|e| e.kind == "user.activated").count(), 1, "a refused one writes none");
    // Active now: another signup with the address writes nothing and names its owner.
    let outcome = store.create_signup(inst.id, &signup(4, "SU@a.example", "t4")).await.unwrap();
    assert!(matches!(outcome, SignupOutcome::EmailExists { .. }), "{outcome:?}");
    // A username another user holds.
    let mut clash = signup(5, "other@a.example", "t5");
    clash.user.username_canonical = Some("person3".into());
    let err = store.create_signup(inst.id, &clash).await.unwrap_err();
    assert!(matches!(err, onramp_core::ports::StoreError::Unique(UniqueKey::Username)), "{err:?}");
}

#[rstest]
#[tokio::test]
async fn a_registration_and_its_code(#[values(SQLITE, POSTGRES)] db: Db) {
    let f = open(db).await;
    let store = f.store.as_ref();
    let inst = instance(store, "default").await;
    let registration = |n: usize, code: &str| NewRegistration {
        audit: trail("user.signed_up"),
        user: person(n, "reg@a.example", UserStatus::Pending),
        profile: UserProfile { first_name: Some("Reg".into()), ..Default::default() },
        role: None,
        verification: Some(secret(Purpose::EmailConfirm, code)),
        message: Some(message(n)),
        replace_pending_issued_before: NOW - Duration::minutes(1),
        created_at: NOW,
    };
    let RegistrationOutcome::Created { user_key } =
        store.register_user(inst.id, &registration(1, "c1")).await.unwrap()
    else {
        panic!("created");
    };
    assert_eq!(
        store.register_user(inst.id, &registration(2, "c2")).await.unwrap(),
        RegistrationOutcome::PendingRecently
    );
    let redeem = |code: &str| CodeRedemption {
        audit: trail("user.activated"),
        email_canonical: "reg@a.example".into(),
        purposes: vec![Purpose::EmailConfirm, Purpose::PasswordReset],
        secret_hash: code.into(),
        new_password_hash: "$argon2id$chosen".into(),
        now: NOW,
        max_attempts: u32::MAX,
    };
    assert_eq!(store.redeem_code(inst.id, &redeem("wrong")).await.unwrap(), Err(RedeemError::NotFound));
    let (key, _) = store.redeem_code(inst.id, &redeem("c1")).await.unwrap().unwrap();
    assert_eq!(key, user_key);
    assert_eq!(store.redeem_code(inst.id, &redeem("c1")).await.unwrap(), Err(RedeemError::AlreadyUsed));
    let user = store.user_view(inst.id, user_key).await.unwrap().unwrap();
    assert_eq!(user.status, UserStatus::Active);
    let login = store
        .login_record(inst.id, &LoginLookup::EmailCanonical("reg@a.example".into()))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(login.password_hash, "$argon2id$chosen");
    // Active: a registration of the address writes nothing.
    assert!(matches!(
        store.register_user(inst.id, &registration(3, "c3")).await.unwrap(),
        RegistrationOutcome::Exists { .. }
    ));
}

#[rstest]
#[tokio::test]
async fn users_inserted_in_bulk_log_in_and_a_taken_address_fails_the_whole_batch(
    #[values(SQLITE, POSTGRES)] db: Db,
) {
    let f = open(db).await;
    let inst = instance(f.store.as_ref(), "bulk").await;
    let users: Vec<NewUser> = (0..2500)
        .map(|n| {
            let status = if n % 2 == 0 { UserStatus::Active } else { UserStatus::Pending };
            person(n, &format!("bulk{n}@a.example"), status)
        })
        .collect();
    assert_eq!(f.store.insert_users(inst.id, &users, NOW).await.unwrap(), 2500);
    let found = f
        .store
        .login_record(inst.id, &LoginLookup::UsernameCanonical("person2001".into()))
        .await
        .unwrap()
        .expect("inserted");
    assert_eq!((found.public_id.as_str(), found.status), ("usr_p2001", UserStatus::Pending));
    let view = f.store.user_view(inst.id, found.user_key).await.unwrap().expect("a view");
    assert_eq!(view.email, "bulk2001@a.example");

    // One address already taken: nothing of the batch is written.
    let again = vec![
        person(9000, "fresh@a.example", UserStatus::Active),
        person(9001, "bulk7@a.example", UserStatus::Active),
    ];
    assert!(matches!(
        f.store.insert_users(inst.id, &again, NOW).await,
        Err(StoreError::Unique(UniqueKey::Email))
    ));
    let fresh = f.store.login_record(inst.id, &LoginLookup::EmailCanonical("fresh@a.example".into())).await;
    assert!(fresh.unwrap().is_none(), "the batch was rolled back");
}

fn event(instance: Option<InstanceId>, kind: &'static str, user: Option<&str>) -> NewAuditEvent {
    NewAuditEvent {
        instance,
        kind,
        actor: "admin:adm_test".into(),
        target: user.map(str::to_owned),
        user: user.map(str::to_owned),
        client: Some("127.0.0.1".into()),
        detail: serde_json::json!({ "why": "test" }),
        at: NOW,
        publish: false,
    }
}

#[rstest]
#[tokio::test]
async fn marked_audit_entries_are_published_once_with_their_user(#[values(SQLITE, POSTGRES)] db: Db) {
    let f = open(db).await;
    let a = instance(f.store.as_ref(), "a").await;
    f.store.insert_users(a.id, &[person(1, "pub@a.example", UserStatus::Active)], NOW).await.unwrap();
    f.store.record_audit(&event(Some(a.id), "user.disabled", Some("usr_p1"))).await.unwrap();
    let marked = NewAuditEvent { publish: true, ..event(Some(a.id), "user.disabled", Some("usr_p1")) };
    f.store.record_audit(&marked).await.unwrap();
    let gone = NewAuditEvent { publish: true, ..event(Some(a.id), "user.deleted", Some("usr_gone")) };
    f.store.record_audit(&gone).await.unwrap();

    let pending = f.store.unpublished_events(10).await.unwrap();
    assert_eq!(pending.len(), 2, "only the marked entries");
    assert_eq!(pending[0].instance, Some((a.id, "a".into())));
    assert_eq!(pending[0].kind, "user.disabled");
    let user = pending[0].user.as_ref().unwrap();
    assert_eq!(
        (user.public_id.as_str(), user.email.as_str(), user.status.as_str()),
        ("usr_p1", "pub@a.example", "active")
    );
    assert_eq!(pending[1].user, None, "a user who is gone is named by id only");
    assert_eq!(pending[1].user_id.as_deref(), Some("usr_gone"));

    assert!(f.store.publish_event(pending[0].id, &[(a.id, message(1)), (a.id, message(2))]).await.unwrap());
    assert!(!f.store.publish_event(pending[0].id, &[(a.id, message(3))]).await.unwrap(), "only once");
    assert_eq!(f.store.outbox_counts().await.unwrap().pending, 2, "the second hand-over wrote nothing");
    assert_eq!(f.store.unpublished_events(10).await.unwrap().len(), 1);
}

#[rstest]
#[tokio::test]
async fn admin_tokens_are_found_by_hash_scoped_listed_and_revoked_with_their_audit(
    #[values(SQLITE, POSTGRES)] db: Db,
) {
    let f = open(db).await;
    let inst = instance(f.store.as_ref(), "acme").await;
    let token = |id: &str, hash: &str, scope| NewAdminToken {
        id: id.into(),
        secret_hash: hash.into(),
        prefix: "oadm_abcd".into(),
        label: format!("label {id}"),
        scope,
        created_at: NOW,
    };
    let global = AdminScope { instance: None, read_only: false };
    let scoped = AdminScope { instance: Some(inst.id), read_only: true };
    f.store
        .create_admin_token(&token("adm_1", "h1", global), &event(None, "admin_token.created", None))
        .await
        .unwrap();
    f.store
        .create_admin_token(&token("adm_2", "h2", scoped), &event(None, "admin_token.created", None))
        .await
        .unwrap();
    let found = f.store.admin_token_by_hash("h2").await.unwrap().expect("by hash");
    assert_eq!(
        (found.id.as_str(), found.scope, found.instance_name.as_deref()),
        ("adm_2", scoped, Some("acme"))
    );
    assert!(f.store.admin_token_by_hash("nope").await.unwrap().is_none());
    let all = f.store.list_admin_tokens().await.unwrap();
    assert_eq!(all.iter().map(|t| t.id.as_str()).collect::<Vec<_>>(), ["adm_1", "adm_2"]);

    let revoke = event(None, "admin_token.revoked", None);
    assert!(f.store.revoke_admin_token("adm_1", NOW, &revoke).await.unwrap());
    assert!(!f.store.revoke_admin_token("adm_1", NOW, &revoke).await.unwrap(), "once");
    assert!(f.store.admin_token_by_hash("h1").await.unwrap().unwrap().revoked_at.is_some());
    let trail = f.store.audit_events(&AuditFilter { limit: 10, ..Default::default() }).await.unwrap();
    let kinds: Vec<_> = trail.items.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(kinds, ["admin_token.revoked", "admin_token.created", "admin_token.created"], "newest first");
}

#[rstest]
#[tokio::test]
async fn the_audit_log_filters_pages_and_prunes(#[values(SQLITE, POSTGRES)] db: Db) {
    let f = open(db).await;
    let a = instance(f.store.as_ref(), "a").await;
    let b = instance(f.store.as_ref(), "b").await;
    for n in 0..5 {
        let mut e = event(Some(a.id), "login.failed", Some("usr_1"));
        e.at = NOW + Duration::minutes(n);
        f.store.record_audit(&e).await.unwrap();
    }
    f.store.record_audit(&event(Some(b.id), "login.failed", Some("usr_1"))).await.unwrap();
    f.store.record_audit(&event(Some(a.id), "user.disabled", Some("usr_2"))).await.unwrap();

    let of_a = |before, limit| AuditFilter { instance: Some(a.id), before, limit, ..Default::default() };
    let first = f.store.audit_events(&of_a(None, 4)).await.unwrap();
    assert_eq!(first.items.len(), 4);
    assert_eq!(first.items[0].kind, "user.disabled");
    assert_eq!(first.items[0].instance.as_deref(), Some("a"));
    assert_eq!(first.items[0].detail["why"], "test");
    let rest = f.store.audit_events(&of_a(first.next, 4)).await.unwrap();
    assert_eq!((rest.items.len(), rest.next), (2, None));
    assert!(rest.items.iter().all(|e| e.instance.as_deref() == Some("a")));

    let of_user = AuditFilter { user: Some("usr_1".into()), limit: 50, ..Default::default() };
    assert_eq!(f.store.audit_events(&of_user).await.unwrap().items.len(), 6, "both instances");
    let of_kind = AuditFilter { kind: Some("user.disabled".into()), limit: 50, ..Default::default() };
    assert_eq!(f.store.audit_events(&of_kind).await.unwrap().items.len(), 1);
    let since = AuditFilter { since: Some(NOW + Duration::minutes(3)), limit: 50, ..Default::default() };
    assert_eq!(f.store.audit_events(&since).await.unwrap().items.len(), 2);

    assert_eq!(f.store.prune_audit(NOW + Duration::minutes(2), 100).await.unwrap(), 4);
    let left = f.store.audit_events(&AuditFilter { limit: 50, ..Default::default() }).await.unwrap();
    assert_eq!(left.items.len(), 3);
}

#[rstest]
#[tokio::test]
async fn an_operator_finds_disables_enables_reissues_and_erases_users(#[values(SQLITE, POSTGRES)] db: Db) {
    let f = open(db).await;
    let inst = instance(f.store.as_ref(), "ops").await;
    let mut users: Vec<NewUser> =
        (0..30).map(|n| person(n, &format!("user{n:02}@ops.example"), UserStatus::Active)).collect();
    users.push(person(99, "waiting@else.example", UserStatus::Pending));
    f.store.insert_users(inst.id, &users, NOW).await.unwrap();
    let filter = |email: Option<EmailMatch>, before, limit| UserFilter {
        email,
        before,
        limit,
        now: Some(NOW),
        ..Default::default()
    };

    // Newest first, a page at a time.
    let page = f.store.find_users(inst.id, &filter(None, None, 20)).await.unwrap();
    assert_eq!(page.items.len(), 20);
    assert_eq!(page.items[0].public_id, "usr_p99");
    let rest = f.store.find_users(inst.id, &filter(None, page.next, 20)).await.unwrap();
    assert_eq!((rest.items.len(), rest.next), (11, None));
    // By a whole address, the start of one, username, status.
    let exact = Some(EmailMatch::Exact("user07@ops.example".into()));
    let found = f.store.find_users(inst.id, &filter(exact, None, 5)).await.unwrap();
    assert_eq!(found.items.iter().map(|u| u.public_id.as_str()).collect::<Vec<_>>(), ["usr_p7"]);
    let prefix = Some(EmailMatch::Prefix("user1".into()));
    assert_eq!(f.store.find_users(inst.id, &filter(prefix, None, 50)).await.unwrap().items.len(), 10);
    let by_name = UserFilter { username_canonical: Some("person3".into()), limit: 5, ..Default::default() };
    assert_eq!(f.store.find_users(inst.id, &by_name).await.unwrap().items.len(), 1);
    let pending = UserFilter { status: Some(UserStatus::Pending), limit: 5, ..Default::default() };
    assert_eq!(f.store.find_users(inst.id, &pending).await.unwrap().items[0].email, "waiting@else.example");
    let other = instance(f.store.as_ref(), "elsewhere").await;
    assert!(f.store.find_users(other.id, &filter(None, None, 5)).await.unwrap().items.is_empty());

    // A session and a secret, which disabling ends.
    let user = f.store.user_record(inst.id, "usr_p7", NOW).await.unwrap().expect("by public id");
    assert!(user.has_password);
    let session = SessionRecord {
        id: "ses_1".into(),
        user_key: user.key,
        user_public_id: user.public_id.clone(),
        issued_at: NOW,
        expires_at: NOW + Duration::hours(1),
        revoked_at: None,
    };
    f.store.create_session(inst.id, &session, &trail("login.succeeded")).await.unwrap();
    f.store
        .issue_secret(inst.id, user.key, &secret(Purpose::PasswordReset, "reset7"), &message(7))
        .await
        .unwrap();
    assert_eq!(f.store.user_record(inst.id, "usr_p7", NOW).await.unwrap().unwrap().sessions, 1);
    let disable = event(Some(inst.id), "user.disabled", Some("usr_p7"));
    assert!(f.store.set_user_enabled(inst.id, user.key, false, &disable).await.unwrap());
    assert!(!f.store.set_user_enabled(inst.id, user.key, false, &disable).await.unwrap(), "already");
    let disabled = f.store.user_record(inst.id, "usr_p7", NOW).await.unwrap().unwrap();
    assert_eq!((disabled.status, disabled.sessions), (UserStatus::Inactive, 0));
    let redeemed = f.store.redeem_secret(inst.id, Purpose::PasswordReset, "reset7", NOW).await.unwrap();
    assert!(redeemed.is_err(), "a disabled user's secrets are void");
    let enable = event(Some(inst.id), "user.enabled", Some("usr_p7"));
    assert!(f.store.set_user_enabled(inst.id, user.key, true, &enable).await.unwrap());
    assert_eq!(
        f.store.user_record(inst.id, "usr_p7", NOW).await.unwrap().unwrap().status,
        UserStatus::Active
    );

    // A required reset: the password stops working, a new secret and its mail are written.
    let reissue = Reissue {
        verification: secret(Purpose::PasswordReset, "reset7b"),
        message: message(8),
        clear_password: true,
        audit: event(Some(inst.id), "user.password_reset_required", Some("usr_p7")),
    };
    f.store.reissue_secret(inst.id, user.key, &reissue).await.unwrap();
    let login = f.store.login_record(inst.id, &LoginLookup::UsernameCanonical("person7".into())).await;
    assert_eq!(login.unwrap().unwrap().password_hash, NO_PASSWORD);
    assert!(!f.store.user_record(inst.id, "usr_p7", NOW).await.unwrap().unwrap().has_password);
    assert_eq!(f.store.outbox_counts().await.unwrap().pending, 2);

    // Erasing leaves a tombstone under the public id and frees the address.
    let erase = event(Some(inst.id), "user.deleted", Some("usr_p7"));
    assert!(f.store.erase_user(inst.id, user.key, &erase).await.unwrap());
    assert!(!f.store.erase_user(inst.id, user.key, &erase).await.unwrap(), "once");
    let gone = f.store.user_record(inst.id, "usr_p7", NOW).await.unwrap().unwrap();
    assert_eq!(gone.status, UserStatus::Deleted);
    assert!(!gone.email.contains("user07") && gone.username.is_none() && gone.name.is_empty());
    let taken = f.store.user_by_email(inst.id, "user07@ops.example").await.unwrap();
    assert!(taken.is_none(), "the address is free");
    let mails = f.store.list_outbox(&OutboxFilter { limit: 10, ..Default::default() }).await.unwrap();
    assert!(mails.items.iter().all(|m| m.recipient != "user07@ops.example"));
    assert!(f.store.redeem_secret(inst.id, Purpose::PasswordReset, "reset7b", NOW).await.unwrap().is_err());

    // Exports go oldest first and leave the erased out.
    let first = f.store.users_after(inst.id, 0, 10, NOW).await.unwrap();
    assert_eq!(first.len(), 10);
    assert_eq!(first[0].public_id, "usr_p0");
    let all = f.store.users_after(inst.id, 0, 100, NOW).await.unwrap();
    assert_eq!(all.len(), 30);

    let trail = AuditFilter { user: Some("usr_p7".into()), limit: 50, ..Default::default() };
    let kinds: Vec<_> =
        f.store.audit_events(&trail).await.unwrap().items.into_iter().map(|e| e.kind).collect();
    assert_eq!(kinds, ["user.deleted", "user.password_reset_required", "user.enabled", "user.disabled"]);
}

#[rstest]
#[tokio::test]
async fn outbox_messages_are_listed_by_status_and_instance_and_retried_one_by_one(
    #[values(SQLITE, POSTGRES)] db: Db,
) {
    let f = open(db).await;
    let a = instance(f.store.as_ref(), "a").await;
    let b = instance(f.store.as_ref(), "b").await;
    for n in 0..3 {
        f.store.enqueue(a.id, &message(n)).await.unwrap();
    }
    f.store.enqueue(b.id, &message(9)).await.unwrap();
    let batch = f.store.claim_outbox(NOW, Duration::minutes(1), 10).await.unwrap();
    f.store.outbox_failed(batch[0].id, 5, None, "550 no such user").await.unwrap();
    f.store.outbox_delivered(batch[1].id, NOW).await.unwrap();

    let list = |status: Option<&str>, instance: Option<InstanceId>| OutboxFilter {
        status: status.map(str::to_owned),
        instance,
        before: None,
        limit: 10,
    };
    let dead = f.store.list_outbox(&list(Some("dead"), None)).await.unwrap();
    assert_eq!(dead.items.len(), 1);
    let entry = &dead.items[0];
    assert_eq!((entry.instance.as_str(), entry.attempts), ("a", 5));
    assert_eq!(entry.last_error.as_deref(), Some("550 no such user"));
    assert_eq!(f.store.list_outbox(&list(None, Some(b.id))).await.unwrap().items.len(), 1);
    assert_eq!(f.store.list_outbox(&list(None, None)).await.unwrap().items.len(), 4);
    let (owner, _) = f.store.outbox_entry(entry.id).await.unwrap().expect("by id");
    assert_eq!(owner, a.id);

    let audit = event(Some(a.id), "outbox.retried", None);
    assert!(f.store.retry_outbox(entry.id, NOW, &audit).await.unwrap());
    assert!(!f.store.retry_outbox(batch[1].id, NOW, &audit).await.unwrap(), "a delivered one is not retried");
    let again = f.store.outbox_entry(entry.id).await.unwrap().unwrap().1;
    assert_eq!((again.status.as_str(), again.attempts, again.last_error), ("pending", 0, None));
}

#[rstest]
#[tokio::test]
async fn an_import_creates_new_addresses_once_and_says_why_it_left_the_rest(
    #[values(SQLITE, POSTGRES)] db: Db,
) {
    let f = open(db).await;
    let inst = instance(f.store.as_ref(), "imports").await;
    f.store.insert_users(inst.id, &[person(1, "taken@i.example", UserStatus::Active)], NOW).await.unwrap();
    let imported = |n: usize, email: &str, username: &str| ImportedUser {
        user: NewUser {
            username: Some(username.into()),
            username_canonical: Some(username.into()),
            ..person(n, email, UserStatus::Active)
        },
        profile: UserProfile {
            first_name: Some("Im".into()),
            phone: Some("+31612345678".into()),
            ..Default::default()
        },
        metadata: Some(r#"{"old_id":7}"#.into()),
    };
    let batch = [
        imported(10, "new@i.example", "newuser10"),
        imported(11, "taken@i.example", "other11"),
        imported(12, "new@i.example", "again12"),
        imported(13, "clash@i.example", "person1"),
        imported(14, "fresh@i.example", "fresh14"),
    ];
    let audit = NewAuditEvent { instance: Some(inst.id), ..trail("user.imported") };
    let outcomes = f.store.import_users(inst.id, &batch, &audit).await.unwrap();
    use ImportOutcome::*;
    assert_eq!(outcomes, [Created, Duplicate, Duplicate, UsernameTaken, Created]);
    let user = f.store.user_record(inst.id, "usr_p10", NOW).await.unwrap().expect("created");
    assert_eq!(
        (user.metadata.as_deref(), user.profile.phone.as_deref()),
        (Some(r#"{"old_id":7}"#), Some("+31612345678"))
    );
    assert_eq!(user.status, UserStatus::Active);
    assert!(user.activated_at.is_some());
    let trail = f
        .store
        .audit_events(&AuditFilter { kind: Some("user.imported".into()), limit: 10, ..Default::default() })
        .await
        .unwrap();
    let mut who: Vec<_> = trail.items.iter().map(|e| e.user_id.clone().unwrap()).collect();
    who.sort();
    assert_eq!(who, ["usr_p10", "usr_p14"]);
    // Again: all known now.
    let again = f.store.import_users(inst.id, &batch[..1], &audit).await.unwrap();
    assert_eq!(again, [Duplicate]);
}

#[rstest]
#[tokio::test]
async fn a_disabled_instance_is_deleted_with_its_rows_but_not_its_audit(#[values(SQLITE, POSTGRES)] db: Db) {
    let f = open(db).await;
    let gone = instance(f.store.as_ref(), "gone").await;
    let kept = instance(f.store.as_ref(), "kept").await;
    for (n, inst, email) in [(1, &gone, "a@gone.example"), (2, &kept, "a@kept.example")] {
        f.store.insert_users(inst.id, &[person(n, email, UserStatus::Active)], NOW).await.unwrap();
        f.store
            .record_audit(&NewAuditEvent { instance: Some(inst.id), ..trail("login.failed") })
            .await
            .unwrap();
    }
    let audit = trail("instance.deleted");
    assert!(f.store.delete_instance(gone.id, &audit).await.is_err(), "an active instance is not deleted");
    assert!(f.store.set_instance_active("gone", false, Some(&trail("instance.disabled"))).await.unwrap());
    assert!(f.store.delete_instance(gone.id, &audit).await.unwrap());
    assert!(f.store.instance_summary("gone").await.unwrap().is_none());
    assert!(f.store.user_by_email(gone.id, "a@gone.example").await.unwrap().is_none());
    assert!(
        f.store.user_by_email(kept.id, "a@kept.example").await.unwrap().is_some(),
        "another instance is untouched"
    );
    let all = f.store.audit_events(&AuditFilter { limit: 10, ..Default::default() }).await.unwrap();
    assert_eq!(all.items.len(), 4, "both failed logins, the disabling and the deletion stay");
    assert!(!f.store.delete_instance(gone.id, &audit).await.unwrap(), "nothing left to delete");
}
