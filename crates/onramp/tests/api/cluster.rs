//! Several onramp nodes on one PostgreSQL: all state is shared through the database.

use crate::helpers::*;
use crate::smtp_sink::SmtpSink;
use onramp::app::{Ports, Service};
use onramp::config::{Config, MailTransportKind, Secret};
use onramp_core::clock::SystemClock;
use onramp_core::token::OsTokenGenerator;
use serde_json::json;
use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One node: its own router, pool, hashing threads and outbox worker; nothing else of its own.
struct Node {
    base: String,
    stop: tokio::sync::watch::Sender<bool>,
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

async fn start_node(config: Config) -> Node {
    let service =
        Service::build(config, Ports { clock: Arc::new(SystemClock), tokens: Arc::new(OsTokenGenerator) })
            .await
            .expect("node starts");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let router = service.router();
    let mut server_stop = stopped.clone();
    tokio::spawn(async move {
        axum::serve(listener, router.into_make_service_with_connect_info::<SocketAddr>())
            .with_graceful_shutdown(async move {
                let _ = server_stop.wait_for(|s| *s).await;
            })
            .await
            .unwrap();
    });
    let mut worker_stop = stopped;
    tokio::spawn(service.worker.run(async move {
        let _ = worker_stop.wait_for(|s| *s).await;
    }));
    Node { base, stop }
}

/// The cluster's shared configuration: one database, one secret key, SMTP to the sink.
fn cluster_config(env: &TestEnv, sink: &SmtpSink) -> Config {
    let mut config = env.config();
    config.secret_key = Some(Secret("5a".repeat(32)));
    config.mail.transport = MailTransportKind::Smtp;
    config.mail.smtp_url = Some(Secret(sink.url()));
    config.rate_limits.enabled = false;
    config.outbox.poll_interval_ms = 100;
    config
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_nodes_deliver_a_thousand_signups_each_exactly_once() {
    let sink = SmtpSink::start().await;
    let env = TestEnv::new(POSTGRES).await;
    let config = cluster_config(&env, &sink);
    // Started at once: migrations and configuration take turns (an advisory lock, row locks).
    let (a, b, c) = tokio::join!(start_node(config.clone()), start_node(config.clone()), start_node(config));
    let nodes = [a, b, c];
    let client = reqwest::Client::new();

    let total = 1000;
    let senders: Vec<_> = (0..10)
        .map(|lane| {
            let client = client.clone();
            let bases: Vec<String> = nodes.iter().map(|n| n.base.clone()).collect();
            tokio::spawn(async move {
                let mut accepted = 0;
                for i in (lane..total).step_by(10) {
                    let body = with(
                        signup_body(&format!("n{i}@cluster.example")),
                        json!({ "username": format!("cluster{i:05}") }),
                    );
                    let r = client
                        .post(format!("{}/v1/auth/signup", bases[i % 3]))
                        .json(&body)
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(r.status(), 200);
                    accepted += 1;
                }
                accepted
            })
        })
        .collect();
    let mut accepted = 0;
    for s in senders {
        accepted += s.await.unwrap();
    }
    assert_eq!(accepted, total);

    let deadline = Instant::now() + Duration::from_secs(60);
    while sink.received().await.len() < total && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Give a would-be duplicate time to show up.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let received = sink.received().await;
    let ids: HashSet<String> = received.iter().map(|m| parse_mail(m).message_id).collect();
    let recipients: HashSet<String> = received.iter().map(|m| parse_mail(m).to).collect();
    assert_eq!(received.len(), total, "every message delivered, none twice");
    assert_eq!(ids.len(), total);
    assert_eq!(recipients.len(), total);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_and_a_session_from_one_node_work_on_another() {
    let sink = SmtpSink::start().await;
    let env = TestEnv::new(POSTGRES).await;
    let config = cluster_config(&env, &sink);
    let a = start_node(config.clone()).await;
    let b = start_node(config).await;
    let client = reqwest::Client::new();

    let r = client
        .post(format!("{}/v1/auth/signup", a.base))
        .json(&signup_body("x@cluster.example"))
        .send()
        .await
        .unwrap();
    let token = json(r).await["token"].as_str().unwrap().to_owned();
    let r = client
        .post(format!("{}/v1/auth/signup-activation", b.base))
        .json(&json!({ "token": token }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "a token issued through A activates through B");

    let login = json!({ "username": "junedoe1", "password": "eomcpmdp2jp2ijvekklmlkm" });
    let session =
        json(client.post(format!("{}/v1/auth/login", a.base)).json(&login).send().await.unwrap()).await;
    let bearer = session["access_token"].as_str().unwrap().to_owned();
    let status =
        |base: String, t: String| async move { client_get(&format!("{base}/v1/auth/session"), &t).await };
    assert_eq!(status(b.base.clone(), bearer.clone()).await, 200, "B accepts A's session");
    let r = client.post(format!("{}/v1/auth/logout", b.base)).bearer_auth(&bearer).send().await.unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(status(a.base.clone(), bearer.clone()).await, 401, "revoked through B, refused by A");

    let jwks_a = json(client.get(format!("{}/.well-known/jwks.json", a.base)).send().await.unwrap()).await;
    let jwks_b = json(client.get(format!("{}/.well-known/jwks.json", b.base)).send().await.unwrap()).await;
    assert_eq!(jwks_a, jwks_b, "signing keys live in the database");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_are_global_across_nodes() {
    let sink = SmtpSink::start().await;
    let env = TestEnv::new(POSTGRES).await;
    let mut config = cluster_config(&env, &sink);
    config.rate_limits.enabled = true;
    let a = start_node(config.clone()).await;
    let b = start_node(config).await;
    let client = reqwest::Client::new();
    let mut statuses = Vec::new();
    // 5 per email per hour, spread over two nodes.
    for i in 0..6 {
        let base = if i % 2 == 0 { &a.base } else { &b.base };
        let r = client
            .post(format!("{base}/v1/auth/signup"))
            .json(&signup_body("g@cluster.example"))
            .send()
            .await
            .unwrap();
        statuses.push(r.status().as_u16());
    }
    assert_eq!(statuses, [200, 200, 200, 200, 200, 429]);
}

async fn client_get(url: &str, bearer: &str) -> u16 {
    reqwest::Client::new().get(url).bearer_auth(bearer).send().await.unwrap().status().as_u16()
}
