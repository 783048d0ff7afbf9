//! PostgreSQL restarts under load: requests in flight get 503 (not a hang, not a panic), the
//! pool recovers by itself, the outbox resumes. A test binary of its own, so that no other test
//! runs while the server is down (cargo runs test binaries one after another).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "api/helpers.rs"]
#[allow(dead_code)]
mod helpers;

use helpers::*;
use onramp::app::{Ports, Service};
use serde_json::json;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Stop PostgreSQL, keep it down for longer than the pool's acquire timeout, start it again.
fn restart_postgres(down_for: Duration) {
    let version = std::fs::read_dir("/etc/postgresql")
        .expect("a Debian PostgreSQL cluster under /etc/postgresql")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .next()
        .expect("a cluster version");
    let ctl = |action: &str| {
        let out = std::process::Command::new("pg_ctlcluster")
            .args(["--skip-systemctl-redirect", &version, "main", action, "-m", "fast"])
            .output()
            .expect("pg_ctlcluster runs");
        assert!(out.status.success(), "{action} failed: {}", String::from_utf8_lossy(&out.stderr));
    };
    ctl("stop");
    std::thread::sleep(down_for);
    ctl("start");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_restart_under_load_gives_503s_then_recovers() {
    let env = TestEnv::new(POSTGRES).await;
    let mut config = env.config();
    config.rate_limits.enabled = false;
    config.database.acquire_timeout_secs = 2;
    config.outbox.poll_interval_ms = 100;
    config.outbox.retry_base_secs = 1;
    // A claim that commits just as the server goes down never hears back: its messages wait
    // for the lease to run out, so keep the lease short here.
    config.mail.timeout_secs = 1;
    config.outbox.lease_secs = 3;
    let mail_dir = env.dir.path().join("mail");
    let service = Service::build(config, Ports::default()).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let router = service.router();
    tokio::spawn(async move {
        axum::serve(listener, router.into_make_service_with_connect_info::<SocketAddr>()).await.unwrap();
    });
    tokio::spawn(service.worker.run(std::future::pending::<()>()));

    // Load: 4 lanes of signups for a bounded time.
    let until = Instant::now() + Duration::from_secs(12);
    let lanes: Vec<_> = (0..4)
        .map(|lane| {
            let base = base.clone();
            tokio::spawn(async move {
                let client = reqwest::Client::builder().timeout(Duration::from_secs(20)).build().unwrap();
                let mut results = Vec::new();
                let mut i = 0;
                while Instant::now() < until && i < 10_000 {
                    let body = with(
                        signup_body(&format!("l{lane}-{i}@restart.example")),
                        json!({ "username": format!("lane{lane}x{i:05}") }),
                    );
                    let t = Instant::now();
                    let status = match client.post(format!("{base}/v1/auth/signup")).json(&body).send().await
                    {
                        Ok(r) => r.status().as_u16(),
                        Err(e) => panic!("request failed outright: {e}"),
                    };
                    results.push((status, t.elapsed()));
                    i += 1;
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                results
            })
        })
        .collect();

    tokio::time::sleep(Duration::from_secs(2)).await;
    let down = Instant::now();
    tokio::task::spawn_blocking(|| restart_postgres(Duration::from_secs(3))).await.unwrap();
    let down_for = down.elapsed();

    let mut results = Vec::new();
    for lane in lanes {
        results.extend(lane.await.unwrap());
    }
    let accepted = results.iter().filter(|(s, _)| *s == 200).count();
    let unavailable = results.iter().filter(|(s, _)| *s == 503).count();
    let slowest = results.iter().map(|(_, t)| *t).max().unwrap();
    assert!(results.iter().all(|(s, _)| *s == 200 || *s == 503), "only 200 or 503: {results:?}");
    assert!(slowest < Duration::from_secs(8), "a request hung for {slowest:?}");
    assert!(accepted > 0);
    assert!(unavailable > 0, "an outage of {down_for:?} produced no 503");
    // The pool recovered by itself: the service answers normally again.
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let r = client.get(format!("{base}/readyz")).send().await.unwrap();
        if r.status() == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "never ready again");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let after = with(signup_body("after@restart.example"), json!({ "username": "afterrestart" }));
    assert_eq!(
        client.post(format!("{base}/v1/auth/signup")).json(&after).send().await.unwrap().status(),
        200
    );
    // The outbox resumed: one mail per accepted signup.
    let deadline = Instant::now() + Duration::from_secs(30);
    while read_mails(&mail_dir).len() < accepted + 1 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(read_mails(&mail_dir).len(), accepted + 1, "{accepted} accepted, {unavailable} got 503");
    eprintln!("restart under load: {accepted} accepted, {unavailable} answered 503, slowest {slowest:?}");
}
