//! The outbox: delivery over a real SMTP conversation, retries while SMTP is down, dead
//! letters, and nothing lost across a restart.

use crate::helpers::*;
use crate::smtp_sink::SmtpSink;
use onramp::config::{MailTransportKind, Secret};
use rstest::rstest;

async fn smtp_app(db: Db, sink: &SmtpSink) -> TestApp {
    let url = sink.url();
    TestApp::spawn_with(db, move |c| {
        c.mail.transport = MailTransportKind::Smtp;
        c.mail.smtp_url = Some(Secret(url));
        c.mail.timeout_secs = 5;
    })
    .await
}

#[rstest]
#[tokio::test]
async fn mail_goes_out_over_smtp_with_its_message_id(#[values(SQLITE, POSTGRES)] db: Db) {
    let sink = SmtpSink::start().await;
    let app = smtp_app(db, &sink).await;
    let token =
        json(app.signup(&signup_body("smtp@acmecorp.com")).await).await["token"].as_str().unwrap().to_owned();
    assert_eq!(app.worker.drain().await.unwrap(), 1);
    let received = sink.received().await;
    assert_eq!(received.len(), 1);
    let mail = parse_mail(&received[0]);
    assert_eq!(mail.to, "smtp@acmecorp.com");
    assert_eq!(token_in(&mail), token);
    let stored = app.text("SELECT message_id FROM outbox").await;
    assert_eq!(format!("<{}>", mail.message_id), stored, "the Message-ID was fixed at enqueue time");
}

#[rstest]
#[tokio::test]
async fn while_smtp_is_down_signups_are_accepted_and_mail_waits_then_goes_out_once(
    #[values(SQLITE, POSTGRES)] db: Db,
) {
    let sink = SmtpSink::start().await;
    sink.set_failing(true);
    let app = smtp_app(db, &sink).await;
    assert_eq!(app.signup(&signup_body("wait1@acmecorp.com")).await.status(), 200);
    app.worker.drain().await.unwrap();
    assert_eq!(
        app.signup(&with(signup_body("wait2@acmecorp.com"), serde_json::json!({ "username": "waiter02" })))
            .await
            .status(),
        200,
        "the API keeps accepting signups"
    );
    app.worker.drain().await.unwrap();
    assert!(sink.received().await.is_empty());
    assert_eq!(
        app.count("SELECT COUNT(*) FROM outbox WHERE status = 'pending' AND last_error IS NOT NULL").await,
        2
    );

    // Not due yet: nothing is retried before its backoff ends.
    assert_eq!(app.worker.run_once().await.unwrap(), 0);

    sink.set_failing(false);
    app.clock.advance(time::Duration::seconds(11));
    app.worker.drain().await.unwrap();
    let received = sink.received().await;
    assert_eq!(received.len(), 2);
    let mut to: Vec<String> = received.iter().map(|m| parse_mail(m).to).collect();
    to.sort();
    assert_eq!(to, ["wait1@acmecorp.com", "wait2@acmecorp.com"]);
    assert_eq!(app.count("SELECT COUNT(*) FROM outbox WHERE status = 'delivered'").await, 2);
    // Delivered once: another pass sends nothing.
    app.clock.advance(time::Duration::hours(2));
    app.worker.drain().await.unwrap();
    assert_eq!(sink.received().await.len(), 2);
}

#[rstest]
#[tokio::test]
async fn an_unreachable_smtp_server_is_retried_too(#[values(SQLITE, POSTGRES)] db: Db) {
    // A port nothing listens on: take one, then close it.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let app = TestApp::spawn_with(db, move |c| {
        c.mail.transport = MailTransportKind::Smtp;
        c.mail.smtp_url = Some(Secret(format!("smtp://127.0.0.1:{port}")));
    })
    .await;
    app.signup(&signup_body("down@acmecorp.com")).await;
    app.worker.drain().await.unwrap();
    assert_eq!(app.count("SELECT attempts FROM outbox").await, 1);
    assert_eq!(app.count("SELECT COUNT(*) FROM outbox WHERE status = 'pending'").await, 1);
    app.expect_undelivered(); // waiting for its retry
}

#[rstest]
#[tokio::test]
async fn a_message_is_dead_lettered_after_its_last_attempt(#[values(SQLITE, POSTGRES)] db: Db) {
    let sink = SmtpSink::start().await;
    sink.set_failing(true);
    let app = smtp_app(db, &sink).await; // max_attempts = 3, first retry after 10 s
    app.signup(&signup_body("dead@acmecorp.com")).await;
    for _ in 0..5 {
        app.worker.drain().await.unwrap();
        app.clock.advance(time::Duration::minutes(5));
    }
    assert_eq!(app.count("SELECT COUNT(*) FROM outbox WHERE status = 'dead' AND attempts = 3").await, 1);
    app.expect_undelivered();
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(metrics.contains("onramp_outbox_dead 1"), "{metrics}");
    assert!(metrics.contains("onramp_outbox_failures_total 3"), "{metrics}");
}

#[rstest]
#[tokio::test]
async fn a_committed_signup_is_delivered_after_a_restart(#[values(SQLITE, POSTGRES)] db: Db) {
    let env = TestEnv::new(db).await;
    let config = env.config();
    let first = TestApp::spawn_in(env, config.clone()).await;
    let token = json(first.signup(&signup_body("restart@acmecorp.com")).await).await["token"]
        .as_str()
        .unwrap()
        .to_owned();
    // The process goes away before its worker ran.
    first.expect_undelivered();
    let env = first.into_env();
    assert!(read_mails(&env.dir.path().join("mail")).is_empty());

    let second = TestApp::spawn_in(env, config).await;
    let mails = second.mails_to("restart@acmecorp.com").await;
    assert_eq!(mails.len(), 1);
    assert_eq!(token_in(&mails[0]), token);
    assert_eq!(second.activate(&token).await.status(), 200);
}

#[rstest]
#[tokio::test]
async fn a_node_with_another_secret_key_refuses_to_start(#[values(SQLITE, POSTGRES)] db: Db) {
    let env = TestEnv::new(db).await;
    let mut config = env.config();
    config.secret_key = Some(onramp::config::Secret("1f".repeat(32)));
    let first = TestApp::spawn_in(env, config.clone()).await;
    assert_eq!(first.signup(&signup_body("key@acmecorp.com")).await.status(), 200);
    first.expect_undelivered(); // the next node sends it
    let env = first.into_env();
    // Same database, another key: no start, and a message that says why.
    config.secret_key = Some(onramp::config::Secret("2e".repeat(32)));
    let ports = onramp::app::Ports {
        clock: std::sync::Arc::new(onramp_core::clock::SystemClock),
        tokens: std::sync::Arc::new(onramp_core::token::OsTokenGenerator),
    };
    let refused = onramp::app::Service::build(config.clone(), ports).await.err().expect("refused");
    assert!(format!("{refused:#}").contains("secret key"), "{refused:#}");
    // The right key starts, and the mail the first node committed goes out.
    config.secret_key = Some(onramp::config::Secret("1f".repeat(32)));
    let again = TestApp::spawn_in(env, config).await;
    assert_eq!(again.mails_to("key@acmecorp.com").await.len(), 1);
}

#[rstest]
#[tokio::test]
async fn a_payload_this_node_cannot_open_is_left_for_another_never_dead_lettered(
    #[values(SQLITE, POSTGRES)] db: Db,
) {
    let sink = SmtpSink::start().await;
    let app = smtp_app(db, &sink).await; // max_attempts = 3
    assert_eq!(app.signup(&signup_body("sealed@acmecorp.com")).await.status(), 200);
    let postgres = app.env.pg.is_some();
    let hex_of = if postgres { "encode(payload, 'hex')" } else { "hex(payload)" };
    let original = app.text(&format!("SELECT {hex_of} FROM outbox")).await;
    // What another node's key sealed: this node cannot open it.
    let foreign =
        onramp_core::seal::SealKey::from_bytes([7; 32]).seal([3; 24], b"{\"template\":\"x\"}").unwrap();
    let literal = |hex: &str| if postgres { format!("decode('{hex}', 'hex')") } else { format!("X'{hex}'") };
    let foreign_hex: String = foreign.iter().map(|b| format!("{b:02x}")).collect();
    app.exec(&format!("UPDATE outbox SET payload = {}", literal(&foreign_hex))).await;
    for _ in 0..5 {
        app.worker.drain().await.unwrap();
        app.clock.advance(time::Duration::minutes(10));
    }
    assert_eq!(
        app.count("SELECT COUNT(*) FROM outbox WHERE status = 'pending' AND attempts = 0 AND last_error LIKE 'unopenable%'").await,
        1
    );
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(metrics.contains("onramp_outbox_unopenable_total 5"), "{metrics}");
    assert!(metrics.contains("onramp_outbox_dead 0"), "{metrics}");
    // Once a node can open it (here: the payload as sealed), it goes out.
    app.exec(&format!("UPDATE outbox SET payload = {}", literal(&original.to_lowercase()))).await;
    app.worker.drain().await.unwrap();
    assert_eq!(sink.received().await.len(), 1);
}

#[rstest]
#[tokio::test]
async fn on_shutdown_the_worker_lets_go_of_the_messages_it_has_not_sent(#[values(SQLITE, POSTGRES)] db: Db) {
    // An SMTP server that takes the connection and never answers: each send hangs until the
    // mail timeout.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("smtp://{}", silent.local_addr().unwrap());
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = silent.accept().await {
            held.push(s);
        }
    });
    let app = TestApp::spawn_with(db, move |c| {
        c.mail.transport = MailTransportKind::Smtp;
        c.mail.smtp_url = Some(Secret(url));
        c.mail.timeout_secs = 1;
    })
    .await;
    for n in 0..3 {
        let body = with(signup_body(&format!("stop{n}@acmecorp.com")), serde_json::json!({"username": null}));
        assert_eq!(app.signup(&body).await.status(), 200);
    }
    // Shutdown comes while the first of the three is being sent.
    app.worker.run_until(tokio::time::sleep(std::time::Duration::from_millis(300))).await;
    assert_eq!(app.count("SELECT COUNT(*) FROM outbox WHERE attempts = 1 AND status = 'pending'").await, 1);
    assert_eq!(
        app.count(
            "SELECT COUNT(*) FROM outbox WHERE attempts = 0 AND status = 'pending' AND lease_until IS NULL
             AND last_error = 'released at shutdown'"
        )
        .await,
        2,
        "the rest is free for another node at once, not after the lease"
    );
    app.expect_undelivered(); // the server never answers
}

/// A CA made here, and a certificate for `localhost` it signed: (CA PEM, TLS acceptor).
fn private_ca() -> (String, tokio_rustls::TlsAcceptor) {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
    use tokio_rustls::rustls;
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(DnType::CommonName, "onramp test CA");
    let ca_key = KeyPair::generate().unwrap();
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let leaf_key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .signed_by(&leaf_key, &ca, &ca_key)
        .unwrap();
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![leaf.der().clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into()),
        )
        .unwrap();
    (ca.pem(), tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config)))
}

/// How a mail server speaks TLS.
#[derive(Debug, Clone, Copy)]
enum Tls {
    /// `smtps://`: TLS from the first byte.
    Implicit,
    /// `smtp://…?tls=required`: plain, then STARTTLS.
    StartTls,
}

#[rstest]
#[tokio::test]
async fn smtp_over_tls_to_a_server_of_a_private_ca(
    #[values(SQLITE, POSTGRES)] db: Db,
    #[values(Tls::Implicit, Tls::StartTls)] tls: Tls,
) {
    let (ca_pem, acceptor) = private_ca();
    let (sink, url) = match tls {
        Tls::Implicit => {
            let sink = SmtpSink::start_tls(acceptor).await;
            let url = format!("smtps://localhost:{}", sink.addr.port());
            (sink, url)
        }
        // As Postfix on port 587: plain, then STARTTLS, which `tls=required` insists on.
        Tls::StartTls => {
            let sink = SmtpSink::start_starttls(acceptor).await;
            let url = format!("smtp://localhost:{}?tls=required", sink.addr.port());
            (sink, url)
        }
    };
    // Without the CA: the handshake fails, and says it is a configuration error.
    let app = {
        let url = url.clone();
        TestApp::spawn_with(db, move |c| {
            c.mail.transport = MailTransportKind::Smtp;
            c.mail.smtp_url = Some(Secret(url));
            c.mail.timeout_secs = 5;
        })
        .await
    };
    assert_eq!(app.signup(&signup_body("tls@acmecorp.com")).await.status(), 200);
    app.worker.drain().await.unwrap();
    assert!(sink.received().await.is_empty());
    let failures = app.state.onramp.store().outbox_failures(10).await.unwrap();
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert_eq!(failures[0].status, "pending", "retried once fixed, not dead");
    assert!(failures[0].last_error.contains("TLS (a configuration error"), "{}", failures[0].last_error);
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(metrics.contains("onramp_outbox_tls_failures_total 1"), "{metrics}");
    app.expect_undelivered();
    drop(app);

    // With `mail.tls_ca_file`: delivered over TLS.
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca_pem).unwrap();
    let app = TestApp::spawn_with(db, move |c| {
        c.mail.transport = MailTransportKind::Smtp;
        c.mail.smtp_url = Some(Secret(url));
        c.mail.timeout_secs = 5;
        c.mail.tls_ca_file = Some(ca_file);
    })
    .await;
    assert_eq!(app.signup(&signup_body("tls@acmecorp.com")).await.status(), 200);
    assert_eq!(app.worker.drain().await.unwrap(), 1);
    let received = sink.received().await;
    assert_eq!(received.len(), 1);
    assert_eq!(parse_mail(&received[0]).to, "tls@acmecorp.com");
}
