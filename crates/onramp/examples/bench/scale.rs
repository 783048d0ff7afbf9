//! `bench -- scale [DATABASE_URL or -] [SIZES]`: does a request cost the same with a million users
//! stored as with a thousand? The store is filled through its own bulk insert (not through
//! HTTP) to each size in turn (default 1,000, 100,000 and 1,000,000 users); at each, real HTTP
//! over loopback measures signups, activations, logins and the app schema (after a checkpoint,
//! and on PostgreSQL a VACUUM ANALYZE, as after an import). Prints a table and
//! the goals with their ratios, and draws the figures into `target/bench/scale-<db>.svg`.

use super::{Window, bench_config, percentile, redacted, serve};
use onramp::app::{Ports, Service};
use onramp_core::model::*;
use onramp_core::password::Password;
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, Instant};

const PASSWORD: &str = "a long benchmark passphrase";
/// Users inserted per call of the store's bulk insert.
const FILL_BATCH: usize = 10_000;
/// Pending signups made for the activation window at each size (at most half of it, so a size
/// is mostly fill users), and at the largest, where the activation goal is judged over >= 3 s.
const TOKENS: usize = 3_000;
const TOKENS_AT_LARGEST: usize = 20_000;

/// One measured window at one size.
pub struct Row {
    pub users: usize,
    pub op: &'static str,
    pub window: Window,
}

pub async fn run(database_url: Option<String>, sizes: Vec<usize>) {
    let dir = tempfile::tempdir().unwrap();
    let config = bench_config(dir.path(), database_url);
    let service = Service::build(config, Ports::default()).await.unwrap();
    let onramp = service.state.onramp.clone();
    let store = onramp.store().clone();
    let db = if service.state.config.database_url().starts_with("sqlite") { "sqlite" } else { "postgres" };
    println!(
        "onramp scale bench: {} cores, database {}, sizes {sizes:?}",
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        redacted(&service.state.config.database_url()),
    );
    // No outbox worker: mail stays in the outbox, so the windows measure the request path only.
    let base = serve(&service).await;
    let client = reqwest::Client::new();
    let instance = onramp.instance(DEFAULT_INSTANCE).await.unwrap();
    let hash = onramp.hasher().hash(&Password::for_verification(PASSWORD)).await.unwrap();
    let concurrency = onramp.hasher().threads() * 3;

    let mut stored = 0usize; // users in the store, by this bench's count
    let mut filled = 0usize; // of them, fill users (`fill{n}`, active, who can log in)
    let mut rows = Vec::new();
    let largest = sizes.iter().copied().max().unwrap_or(0);
    for &size in &sizes {
        // The window starts with `size` users stored: fill users, then the pending signups the
        // activation window redeems.
        let tokens = if size == largest { TOKENS_AT_LARGEST } else { TOKENS.min(size / 2) };
        let started = Instant::now();
        let before = filled;
        while stored + tokens < size {
            let n = FILL_BATCH.min(size - tokens - stored);
            let batch: Vec<NewUser> = (filled..filled + n).map(|i| fill_user(i, &hash)).collect();
            store.insert_users(instance.id, &batch, onramp.now()).await.unwrap();
            (filled, stored) = (filled + n, stored + n);
        }
        let secs = started.elapsed().as_secs_f64();
        let added = filled - before;
        println!(
            "fill         {added:>7} users in {secs:>6.2}s = {:>8.0}/s -> {stored} stored",
            added as f64 / secs
        );

        let tokens = pending_signups(&onramp, &instance, tokens, stored).await;
        stored += tokens.len();
        settle(&service.state.config.database_url()).await;

        let users = stored;
        let signups = signups(&client, &base, concurrency, stored).await;
        stored += signups.n;
        rows.push(Row { users, op: "signup", window: signups });
        rows.push(Row { users, op: "activation", window: activations(&client, &base, tokens).await });
        rows.push(Row { users, op: "login", window: logins(&client, &base, concurrency, filled).await });
        rows.push(Row { users, op: "app schema", window: schema(&client, &base).await });
        for row in rows.iter().filter(|r| r.users == users) {
            row.window.print(&format!("{} @{}", row.op, short(users)));
        }
    }
    println!();
    table(&rows);
    goals(&rows, db);
    let path = std::path::Path::new("target/bench").join(format!("scale-{db}.svg"));
    std::fs::create_dir_all("target/bench").unwrap();
    super::chart::draw(&path, db, &rows);
    println!("chart        {}", path.display());
}

/// What an operator does after a bulk import, before the windows. PostgreSQL: fresh planner
/// statistics and a checkpoint, so autovacuum and the checkpointer do not start inside the
/// first window after a million-row fill (they did: signup p99 280-380 ms at 1M). SQLite: a
/// checkpoint only; onramp never runs ANALYZE there, and with its statistics SQLite picked
/// slower plans (activations 2,560/s instead of 3,900/s).
async fn settle(url: &str) {
    use sqlx::Connection;
    let started = Instant::now();
    if url.starts_with("sqlite") {
        let mut conn = sqlx::SqliteConnection::connect(url).await.unwrap();
        for sql in ["PRAGMA wal_checkpoint(TRUNCATE)"] {
            sqlx::query(sql).execute(&mut conn).await.unwrap();
        }
    } else {
        let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
        for sql in ["VACUUM ANALYZE", "CHECKPOINT"] {
            sqlx::query(sql).execute(&mut conn).await.unwrap();
        }
    }
    println!("settle       {:.2}s", started.elapsed().as_secs_f64());
}

fn fill_user(i: usize, hash: &str) -> NewUser {
    NewUser {
        public_id: format!("usr_fill{i}"),
        uuid: uuid::Uuid::from_u128(0xF111_0000_0000 + i as u128),
        email: format!("fill{i}@scale.example"),
        email_canonical: format!("fill{i}@scale.example"),
        username: Some(format!("fill{i}")),
        username_canonical: Some(onramp_core::username::username_key(&format!("fill{i}"))),
        name: format!("Fill {i}"),
        language: "en".into(),
        status: UserStatus::Active,
        password_hash: hash.into(),
        metadata: None,
    }
}

/// `count` pending `/v1` signups written through the store (as the signup use case writes
/// them, with a known token each), for activation to redeem.
async fn pending_signups(
    onramp: &Arc<onramp_core::Onramp>,
    instance: &Instance,
    count: usize,
    offset: usize,
) -> Vec<String> {
    let started = Instant::now();
    let workers: Vec<_> = (0..8usize)
        .map(|w| {
            let (onramp, instance) = (onramp.clone(), instance.clone());
            tokio::spawn(async move {
                let mut tokens = Vec::new();
                for i in (w..count).step_by(8) {
                    let n = offset + i;
                    let token = format!("scale-activation-token-{n:012}-{}", uuid::Uuid::new_v4().simple());
                    let now = onramp.now();
                    let email = format!("pending{n}@scale.example");
                    let signup = NewSignup {
                        audit: onramp_core::audit::pending_user(
                            onramp_core::audit::kinds::USER_SIGNED_UP,
                            &instance,
                            None,
                            now,
                        ),
                        account: NewAccount {
                            public_id: format!("act_p{n}"),
                            title: "Scale".into(),
                            country: "NL".into(),
                            app_id: "app_bench".into(),
                            domain_id: "dom_bench".into(),
                            version_id: "ver_bench".into(),
                        },
                        user: NewUser {
                            public_id: format!("usr_p{n}"),
                            uuid: uuid::Uuid::new_v4(),
                            email: email.clone(),
                            email_canonical: email.clone(),
                            username: Some(format!("pending{n}")),
                            username_canonical: Some(format!("pending{n}")),
                            name: "Pending".into(),
                            language: "en".into(),
                            status: UserStatus::Pending,
                            password_hash: "$argon2id$unused".into(),
                            metadata: None,
                        },
                        verification: NewVerification {
                            purpose: Purpose::Activation,
                            secret_hash: onramp_core::token::secret_hash(&token),
                            expires_at: now + time::Duration::hours(24),
                        },
                        message: NewOutboxMessage {
                            kind: "mail:signup_activation".into(),
                            recipient: email,
                            message_id: format!("<p{n}@scale>"),
                            sealed_payload: Vec::new(),
                            created_at: now,
                        },
                        replace_pending_issued_before: now,
                    };
                    onramp.store().create_signup(instance.id, &signup).await.unwrap();
                    tokens.push(token);
                }
                tokens
            })
        })
        .collect();
    let mut tokens = Vec::new();
    for w in workers {
        tokens.extend(w.await.unwrap());
    }
    println!("tokens       {:>7} pending signups in {:>6.2}s", tokens.len(), started.elapsed().as_secs_f64());
    tokens
}

/// Run `op` on `tasks` tasks until `seconds` pass (or `limit` operations each); every call
/// must succeed.
async fn window<F, Fut>(tasks: usize, seconds: u64, limit: usize, op: F) -> Window
where
    F: Fn(usize, usize) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let handles: Vec<_> = (0..tasks)
        .map(|t| {
            let op = op.clone();
            tokio::spawn(async move {
                let mut lat = Vec::new();
                let mut i = 0;
                while Instant::now() < deadline && i < limit {
                    let at = Instant::now();
                    if !op(t, i).await {
                        break;
                    }
                    lat.push(at.elapsed());
                    i += 1;
                }
                lat
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for h in handles {
        latencies.extend(h.await.unwrap());
    }
    Window::new(latencies, started.elapsed())
}

async fn signups(client: &reqwest::Client, base: &str, tasks: usize, offset: usize) -> Window {
    let (client, url) = (client.clone(), format!("{base}/v1/auth/signup"));
    window(tasks, 5, 100_000, move |t, i| {
        let (client, url) = (client.clone(), url.clone());
        async move {
            let body = json!({
                "domain_id": "dom_bench", "account_title": "Scale", "name": "Scale User",
                "email": format!("s{offset}-{t}-{i}@scale.example"), "country_id": "NL",
                "username": format!("s{offset}x{t}x{i}"), "password": PASSWORD,
            });
            let r = client.post(&url).json(&body).send().await.unwrap();
            assert_eq!(r.status(), 200, "signup");
            true
        }
    })
    .await
}

async fn activations(client: &reqwest::Client, base: &str, tokens: Vec<String>) -> Window {
    let tasks = 8;
    let tokens = Arc::new(tokens);
    let (client, url) = (client.clone(), format!("{base}/v1/auth/signup-activation"));
    window(tasks, 30, usize::MAX, move |t, i| {
        let (client, url, tokens) = (client.clone(), url.clone(), tokens.clone());
        async move {
            let Some(token) = tokens.get(i * tasks + t) else { return false };
            let r = client.post(&url).json(&json!({ "token": token })).send().await.unwrap();
            assert_eq!(r.status(), 200, "activation");
            true
        }
    })
    .await
}

async fn logins(client: &reqwest::Client, base: &str, tasks: usize, filled: usize) -> Window {
    let (client, url) = (client.clone(), format!("{base}/v1/auth/login"));
    window(tasks, 5, 100_000, move |t, i| {
        let (client, url) = (client.clone(), url.clone());
        async move {
            // Spread over the whole table: every login a different, cold row.
            let n = (t * 7_919 + i * 104_729) % filled.max(1);
            let body = json!({ "username": format!("fill{n}"), "password": PASSWORD });
            let r = client.post(&url).json(&body).send().await.unwrap();
            assert_eq!(r.status(), 200, "login");
            true
        }
    })
    .await
}

async fn schema(client: &reqwest::Client, base: &str) -> Window {
    let (client, url) = (client.clone(), format!("{base}/v1/apps/app_bench/schema"));
    window(8, 3, 1_000_000, move |_, _| {
        let (client, url) = (client.clone(), url.clone());
        async move {
            let r = client.get(&url).send().await.unwrap();
            assert_eq!(r.status(), 200, "schema");
            let _ = r.bytes().await;
            true
        }
    })
    .await
}

fn short(users: usize) -> String {
    match users {
        n if n >= 1_000_000 => format!("{:.2}M", n as f64 / 1e6),
        n if n >= 1_000 => format!("{:.0}k", n as f64 / 1e3),
        n => n.to_string(),
    }
}

fn table(rows: &[Row]) {
    println!(
        "{:<12} {:>10} {:>10} {:>9} {:>10} {:>10}",
        "operation", "users", "per s", "window", "p50 ms", "p99 ms"
    );
    for r in rows {
        println!(
            "{:<12} {:>10} {:>10.1} {:>8.1}s {:>10.2} {:>10.2}",
            r.op,
            r.users,
            r.window.rate(),
            r.window.elapsed.as_secs_f64(),
            r.window.p(0.50),
            r.window.p(0.99)
        );
    }
}

/// Prints each goal of issue 15 that this mode measures, with its ratio and whether it is met.
fn goals(rows: &[Row], db: &str) {
    let of = |op: &str| -> Vec<&Row> { rows.iter().filter(|r| r.op == op).collect() };
    let verdict = |ok: bool| if ok { "met" } else { "MISSED" };
    let signups = of("signup");
    if let (Some(small), Some(large)) = (signups.first(), signups.last()) {
        let rate = large.window.rate() / small.window.rate();
        let p99 = small.window.p(0.99) / large.window.p(0.99);
        println!(
            "goal         signup/s @{} / @{} = {rate:.2} (>= 0.95: {})",
            short(large.users),
            short(small.users),
            verdict(rate >= 0.95)
        );
        println!(
            "goal         signup p99 @{} / @{} = {:.2} / {:.2} ms, ratio {p99:.2} (>= 0.95: {})",
            short(small.users),
            short(large.users),
            small.window.p(0.99),
            large.window.p(0.99),
            verdict(p99 >= 0.95)
        );
    }
    if let Some(large) = of("activation").last() {
        let target = if db == "sqlite" { 5_000.0 } else { 3_000.0 };
        let secs = large.window.elapsed.as_secs_f64();
        println!(
            "goal         activations @{} = {:.0}/s over {secs:.1}s (>= {target:.0}/s over >= 3 s: {})",
            short(large.users),
            large.window.rate(),
            verdict(large.window.rate() >= target && secs >= 3.0)
        );
    }
    let _ = percentile; // the window's percentiles come from the same function as the main bench's
}
