//! The built binary, as an operator runs it.

use crate::helpers::*;
use crate::smtp_sink::SmtpSink;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn onramp() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_onramp"));
    cmd.env("RUST_LOG", "info").env_remove("ONRAMP_CONFIG");
    cmd
}

fn write_config(dir: &Path, extra: &str) -> std::path::PathBuf {
    let path = dir.join("onramp.toml");
    let doc = format!(
        r#"
listen = "127.0.0.1:0"
data_dir = "{data}"
{extra}
[hashing]
memory_kib = 1024
iterations = 1
[[instances]]
name = "default"
[[instances.apps]]
id = "app_demo"
name = "Demo"
signup_url = "{SIGNUP_URL}"
[[instances.apps.domains]]
id = "{DOMAIN}"
title = "Acme"
"#,
        data = dir.join("data").display()
    );
    std::fs::write(&path, doc).unwrap();
    path
}

/// Run `onramp --config CONFIG ARGS…`: success, stdout, stderr.
fn cli(config: &Path, args: &[&str]) -> (bool, String, String) {
    let out = onramp().arg("--config").arg(config).args(args).output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A server process that is killed when the test ends, however it ends.
struct Server(Child);

impl Server {
    /// SIGKILL, and wait for it to be gone.
    fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Start `onramp serve` and wait (bounded) for the address it reports.
fn serve(config: &Path) -> (Server, String) {
    let mut child = onramp()
        .arg("serve")
        .arg("--config")
        .arg(config)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let child = Server(child);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(addr) = line.split_whitespace().find_map(|w| w.strip_prefix("addr=")) {
                let _ = tx.send(addr.to_owned());
            }
        }
    });
    let addr = rx.recv_timeout(Duration::from_secs(30)).expect("onramp reports its address");
    (child, format!("http://{addr}"))
}

/// Poll (bounded) until `check` holds.
async fn eventually<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Some(v) = check() {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

#[tokio::test]
async fn the_binary_signs_up_mails_activates_and_logs_in() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "");
    let (mut child, base) = serve(&config);
    let client = reqwest::Client::new();
    let r = client
        .post(format!("{base}/v1/auth/signup"))
        .json(&signup_body("proc@acmecorp.com"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let mail_dir = dir.path().join("data/mail");
    let mail = eventually("the activation .eml", || read_mails(&mail_dir).pop()).await;
    let r = client
        .post(format!("{base}/v1/auth/signup-activation"))
        .json(&serde_json::json!({ "token": token_in(&mail) }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = client
        .post(format!("{base}/v1/auth/login"))
        .json(&serde_json::json!({ "username": "proc@acmecorp.com", "password": "eomcpmdp2jp2ijvekklmlkm" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    child.kill();
}

#[cfg(unix)]
#[tokio::test]
async fn files_under_data_dir_are_readable_by_onramps_user_alone() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "");
    let (mut child, base) = serve(&config);
    let r = reqwest::Client::new()
        .post(format!("{base}/v1/auth/signup"))
        .json(&with(signup_body("perm@acmecorp.com"), serde_json::json!({"password": null})))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let data = dir.path().join("data");
    let mail = eventually("the activation .eml", || read_mails(&data.join("mail")).pop()).await;
    assert!(mail.text.contains("Password: "), "this mail holds a generated password");
    child.kill();
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    for d in [data.clone(), data.join("mail")] {
        assert_eq!(mode(&d), 0o700, "{}", d.display());
    }
    let mut files = vec![data.join("onramp.sqlite3"), data.join("secret.key")];
    files.extend(std::fs::read_dir(data.join("mail")).unwrap().map(|e| e.unwrap().path()));
    files.extend(
        ["onramp.sqlite3-wal", "onramp.sqlite3-shm"].map(|f| data.join(f)).into_iter().filter(|p| p.exists()),
    );
    assert!(files.len() >= 3, "{files:?}");
    for f in files {
        assert_eq!(mode(&f), 0o600, "{}", f.display());
    }
}

#[tokio::test]
async fn kill_9_between_commit_and_send_loses_no_mail() {
    let sink = SmtpSink::start().await;
    sink.set_failing(true);
    let dir = tempfile::tempdir().unwrap();
    let extra = format!(
        "[mail]\ntransport = \"smtp\"\nsmtp_url = \"{}\"\ntimeout_secs = 1\n[outbox]\nretry_base_secs = 1\npoll_interval_ms = 100\nlease_secs = 2\n",
        sink.url()
    );
    let config = write_config(dir.path(), &extra);
    let (mut child, base) = serve(&config);
    let client = reqwest::Client::new();
    let r = client
        .post(format!("{base}/v1/auth/signup"))
        .json(&signup_body("kill9@acmecorp.com"))
        .send()
        .await
        .unwrap();
    let token = json(r).await["token"].as_str().unwrap().to_owned();
    // SIGKILL: no shutdown hook runs.
    child.kill();
    assert!(sink.received().await.is_empty());

    sink.set_failing(false);
    let (mut child, base) = serve(&config);
    let received = {
        let sink = sink.clone();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let got = sink.received().await;
            if !got.is_empty() || Instant::now() > deadline {
                break got;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    assert_eq!(received.len(), 1);
    let mail = parse_mail(&received[0]);
    assert_eq!(token_in(&mail), token);
    let r = client
        .post(format!("{base}/v1/auth/signup-activation"))
        .json(&serde_json::json!({ "token": token }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // No second copy turns up.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(sink.received().await.len(), 1);
    child.kill();
}

#[test]
fn check_config_names_an_unknown_key_and_fails() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "lisen = \"x\"");
    let out = onramp().arg("check-config").arg("--config").arg(&config).output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("lisen"), "{stderr}");
}

#[test]
fn check_config_accepts_a_good_file_and_hides_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let key = "ab".repeat(32);
    let config = write_config(dir.path(), &format!("secret_key = \"{key}\""));
    let out = onramp().arg("check-config").arg("--config").arg(&config).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("configuration is valid"));
    assert!(!stdout.contains(&key), "{stdout}");
}

#[test]
fn environment_variables_override_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "");
    let out = onramp()
        .arg("check-config")
        .arg("--config")
        .arg(&config)
        .env("ONRAMP_PUBLIC_URL", "https://signup.example.com")
        .env("ONRAMP_MAIL__FROM", "Example <hello@example.com>")
        // ONRAMP_* variables that are not configuration keys do not count as unknown keys.
        .env("ONRAMP_LOG_FORMAT", "json")
        .env("ONRAMP_TEST_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("https://signup.example.com") && stdout.contains("hello@example.com"),
        "{stdout}"
    ); // A misspelt variable is refused like a misspelt key.
    let out =
        onramp().arg("check-config").arg("--config").arg(&config).env("ONRAMP_LISTNE", "x").output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("listne"));
}

#[test]
fn migrate_creates_the_database() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "");
    let out = onramp().arg("migrate").arg("--config").arg(&config).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(dir.path().join("data/onramp.sqlite3").exists());
    // Twice is fine.
    assert!(onramp().arg("migrate").arg("--config").arg(&config).output().unwrap().status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_of_a_node_under_load_loses_no_accepted_signup() {
    let sink = SmtpSink::start().await;
    let env = TestEnv::new(POSTGRES).await;
    let pg_url = env.pg.as_ref().unwrap().url.clone();
    let extra = format!(
        "database_url = \"{pg_url}\"\nsecret_key = \"{key}\"\n\
         [mail]\ntransport = \"smtp\"\nsmtp_url = \"{smtp}\"\ntimeout_secs = 1\n\
         [outbox]\nretry_base_secs = 1\npoll_interval_ms = 100\nlease_secs = 2\n\
         [rate_limits]\nenabled = false\n",
        key = "7b".repeat(32),
        smtp = sink.url()
    );
    let config = write_config(env.dir.path(), &extra);
    let (node_a, base_a) = serve(&config);
    let (_node_b, base_b) = serve(&config);
    let bases = std::sync::Arc::new(std::sync::RwLock::new(vec![base_a, base_b]));

    let until = Instant::now() + Duration::from_secs(6);
    let lanes: Vec<_> = (0..2)
        .map(|lane| {
            let bases = bases.clone();
            tokio::spawn(async move {
                let client = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap();
                let mut accepted = Vec::new();
                let mut i = 0usize;
                while Instant::now() < until && i < 10_000 {
                    let base = bases.read().unwrap()[i % 2].clone();
                    let email = format!("k{lane}-{i}@kill.example");
                    let body = with(
                        signup_body(&email),
                        serde_json::json!({ "username": format!("kill{lane}x{i:05}") }),
                    );
                    // A request to the killed node fails outright: not accepted, nothing promised.
                    if let Ok(r) = client.post(format!("{base}/v1/auth/signup")).json(&body).send().await
                        && r.status() == 200
                    {
                        accepted.push(email);
                    }
                    i += 1;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                accepted
            })
        })
        .collect();

    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut node_a = node_a;
    node_a.kill(); // SIGKILL, mid-load
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (_node_a2, base_a2) = serve(&config);
    bases.write().unwrap()[0] = base_a2;

    let mut accepted = std::collections::HashSet::new();
    for lane in lanes {
        accepted.extend(lane.await.unwrap());
    }
    assert!(accepted.len() > 50, "load ran: {}", accepted.len());

    // Nothing accepted is lost, nothing is half-created.
    let pool = sqlx::PgPool::connect(&pg_url).await.unwrap();
    let emails: Vec<String> = sqlx::query_scalar("SELECT email FROM users").fetch_all(&pool).await.unwrap();
    let stored: std::collections::HashSet<String> = emails.into_iter().collect();
    let lost = accepted.difference(&stored).count();
    assert_eq!(lost, 0, "{lost} of {} accepted signups are missing", accepted.len());
    let orphans: i64 = sqlx::query_scalar(
        "SELECT (SELECT COUNT(*) FROM users WHERE account_id IS NULL)
              + (SELECT COUNT(*) FROM accounts a WHERE NOT EXISTS (SELECT 1 FROM users u WHERE u.account_id = a.id))
              + (SELECT COUNT(*) FROM users u WHERE NOT EXISTS (SELECT 1 FROM verifications v WHERE v.user_id = u.id))
              + (SELECT COUNT(*) FROM users u WHERE NOT EXISTS (SELECT 1 FROM outbox o WHERE o.recipient = u.email))",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(orphans, 0, "half-created signups");

    // Every activation mail goes out (the killed node's claimed ones once its lease ran out).
    let deadline = Instant::now() + Duration::from_secs(60);
    let delivered = loop {
        let got: std::collections::HashSet<String> =
            sink.received().await.iter().map(|m| parse_mail(m).to).collect();
        if got.len() >= stored.len() || Instant::now() > deadline {
            break got;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let missing: Vec<&String> = stored.difference(&delivered).collect();
    assert!(
        missing.is_empty(),
        "{} of {} activation mails never arrived, e.g. {:?}",
        missing.len(),
        stored.len(),
        missing.iter().take(3).collect::<Vec<_>>()
    );
    assert_eq!(delivered.len(), stored.len());
    // A message the killed node was sending may go out twice, but only with one Message-ID.
    let received = sink.received().await;
    let ids: std::collections::HashSet<String> = received.iter().map(|m| parse_mail(m).message_id).collect();
    assert_eq!(ids.len(), stored.len());
    pool.close().await;
}

#[tokio::test]
async fn instances_are_managed_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "");
    let run = |args: &[&str]| cli(&config, args);
    let (ok, out, err) = run(&["instance", "create", "joe"]);
    assert!(ok, "{err}");
    assert!(out.contains("created instance joe"), "{out}");
    let (ok, _, err) = run(&["instance", "create", "joe"]);
    assert!(!ok && err.contains("already exists"), "{err}");
    for bad in ["Joe", "-joe", "admin", "platform"] {
        let (ok, _, err) = run(&["instance", "create", "--", bad]);
        assert!(!ok, "{bad} was accepted");
        assert!(err.contains("not a valid") || err.contains("reserved"), "{err}");
    }

    // A running node serves the new instance at joe.{base_domain}.
    let (server, base) = serve(&config);
    let client = reqwest::Client::new();
    let jwks = |host: &'static str| {
        let client = client.clone();
        let url = format!("{base}/.well-known/jwks.json");
        async move { client.get(url).header("host", host).send().await.unwrap().status().as_u16() }
    };
    assert_eq!(jwks("joe.localhost").await, 200);
    drop(server);

    let (ok, out, _) = run(&["instance", "list"]);
    assert!(ok);
    for name in ["default", "joe", "platform"] {
        assert!(out.lines().any(|l| l.starts_with(name)), "{out}");
    }
    let (ok, _, err) = run(&["instance", "disable", "joe"]);
    assert!(ok, "{err}");
    let (_, out, _) = run(&["instance", "show", "joe"]);
    assert!(out.lines().any(|l| l.starts_with("status:") && l.ends_with(" disabled")), "{out}");
    let database = dir.path().join("data/instances/joe.sqlite3");
    assert!(out.contains(&format!("database: sqlite:{}", database.display())), "{out}");
    assert!(database.exists(), "the instance has its own database");
    let (ok, _, err) = run(&["instance", "retry", "joe"]);
    assert!(!ok && err.contains("not waiting to be provisioned"), "{err}");
    let (server, base2) = serve(&config);
    let r = client
        .get(format!("{base2}/.well-known/jwks.json"))
        .header("host", "joe.localhost")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404, "a disabled instance serves nothing");
    drop(server);
    let (ok, _, err) = run(&["instance", "disable", "default"]);
    assert!(!ok && err.contains("built in"), "{err}");
    let (ok, _, err) = run(&["instance", "show", "nobody"]);
    assert!(!ok && err.contains("no instance"), "{err}");
}

#[tokio::test]
async fn user_settings_and_api_keys_are_managed_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "");
    let run = |args: &[&str]| cli(&config, args);
    let (ok, _, err) =
        run(&["instance", "set", "default", "--open-registration", "true", "--open-reg-role", "member"]);
    assert!(ok, "{err}");
    let (ok, _, err) = run(&["instance", "set", "default", "--open-reg-email-service", "nope"]);
    assert!(!ok && err.contains("mail service"), "{err}");
    let (ok, key, err) = run(&["app", "key", "create", "default", "app_demo", "--label", "ci"]);
    assert!(ok, "{err}");
    let key = key.trim().to_owned();
    assert!(key.starts_with("ork_") && key.len() > 30, "{key}");
    let (ok, _, err) = run(&["app", "key", "create", "default", "no_such_app"]);
    assert!(!ok && err.contains("no app"), "{err}");
    let (ok, second, _) = run(&["app", "key", "create", "default", "app_demo"]);
    assert!(ok);
    let second = second.trim().to_owned();

    // A running node takes registrations with either key.
    let (server, base) = serve(&config);
    let client = reqwest::Client::new();
    let register = |key: String, email: &'static str| {
        let client = client.clone();
        let url = format!("{base}/api/v2/user/register");
        async move {
            client
                .post(url)
                .header("X-DreamFactory-API-Key", key)
                .json(&serde_json::json!({"email": email, "password": "a quiet harbour at dawn"}))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(register(key.clone(), "one@example.com").await, 200);
    assert_eq!(register(second.clone(), "two@example.com").await, 200);

    let (ok, list, _) = run(&["app", "key", "list", "default"]);
    assert!(ok);
    let id = list
        .lines()
        .find(|l| l.contains(&key[..8]) && l.contains("ci"))
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap();
    let (ok, _, err) = run(&["app", "key", "revoke", "default", id]);
    assert!(ok, "{err}");
    let (ok, _, _) = run(&["app", "key", "revoke", "default", id]);
    assert!(!ok, "revoked once");
    assert_eq!(register(key, "three@example.com").await, 401, "a revoked key is refused at once");
    assert_eq!(register(second, "three@example.com").await, 200, "the other key goes on");
    drop(server);
}

#[tokio::test]
async fn contracts_are_managed_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "");
    let run = |args: &[&str]| cli(&config, args);
    let fields = r#"[{"name":"name","type":"string","required":true},{"name":"phone","type":"phone","unique":true,"verify":"sms"}]"#;
    let (ok, _, err) =
        run(&["app", "contract", "set", "default", "app_demo", "signup", "--fields", fields, "--default"]);
    assert!(ok, "{err}");
    let bad = r#"[{"name":"name","type":"string","verify":"sms"}]"#;
    let (ok, _, err) = run(&["app", "contract", "set", "default", "app_demo", "bad", "--fields", bad]);
    assert!(!ok && err.contains("phone fields only"), "{err}");
    let (ok, _, err) = run(&["app", "contract", "set", "default", "app_demo", "x", "--fields", "not json"]);
    assert!(!ok && err.contains("JSON"), "{err}");
    let (ok, _, err) = run(&["app", "contract", "set", "default", "no_app", "x", "--fields", "[]"]);
    assert!(!ok && err.contains("no app"), "{err}");
    let (ok, out, _) = run(&["app", "contract", "list", "default", "app_demo"]);
    assert!(ok && out.starts_with("signup (default): "), "{out}");
    let (ok, key, _) = run(&["app", "key", "create", "default", "app_demo"]);
    assert!(ok);

    // A running node creates accounts on it through POST /user.
    let (server, base) = serve(&config);
    let r = reqwest::Client::new()
        .post(format!("{base}/user"))
        .header("X-Api-Key", key.trim())
        .json(&serde_json::json!({"name": "Cli", "phone": "+31 6 12345678"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(r.json::<serde_json::Value>().await.unwrap()["phone"], "+31612345678");
    drop(server);
}

#[tokio::test]
async fn the_outbox_is_inspected_and_dead_letters_retried_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "");
    let run = |args: &[&str]| {
        let (ok, out, _) = cli(&config, args);
        (ok, out)
    };
    let (ok, out) = run(&["outbox", "status"]);
    assert!(ok && out.contains("dead:      0"), "{out}");
    // A dead letter, as a worker that gave up would leave it (in the configured instance).
    assert!(run(&["instance", "list"]).0);
    let db = dir.path().join("data/onramp.sqlite3");
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", db.display())).await.unwrap();
    sqlx::query(
        "INSERT INTO outbox (instance_id, kind, recipient, message_id, payload, status, attempts, next_attempt_at, created_at, last_error)
         SELECT id, 'mail:test', 'x@example.com', '<dead@test>', x'01', 'dead', 10, 0, 0, 'TLS (a configuration error: check mail.tls_ca_file and the server''s certificate): UnknownIssuer'
         FROM instances WHERE name = 'default'",
    )
    .execute(&pool)
    .await
    .unwrap();
    let (_, out) = run(&["outbox", "status"]);
    assert!(out.contains("dead:      1"), "{out}");
    // Why: the last error, as the worker recorded it.
    assert!(out.contains("mail:test dead after 10 attempt(s): TLS (a configuration error"), "{out}");
    let (ok, out) = run(&["outbox", "retry"]);
    assert!(ok && out.starts_with("1 dead-lettered"), "{out}");
    let (_, out) = run(&["outbox", "status"]);
    assert!(out.contains("pending:   1") && out.contains("dead:      0"), "{out}");
    pool.close().await;
}

#[tokio::test]
async fn browser_origins_are_managed_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "");
    let run = |args: &[&str]| cli(&config, args);
    let (ok, out, err) = run(&[
        "app",
        "origins",
        "set",
        "default",
        "app_demo",
        "https://SPA.example.com",
        "https://*.example.org",
        "--partner",
        "false",
    ]);
    assert!(ok, "{err}");
    assert!(out.contains("https://spa.example.com https://*.example.org"), "{out}");
    let (ok, _, err) = run(&["app", "origins", "set", "default", "app_demo", "spa.example.com"]);
    assert!(!ok && err.contains("is not an origin"), "{err}");
    let (ok, _, err) = run(&["app", "origins", "set", "default", "no_app", "https://x.example"]);
    assert!(!ok && err.contains("no app"), "{err}");
    let (ok, out, _) = run(&["app", "origins", "list", "default", "app_demo"]);
    assert!(
        ok && out.contains("allowed: https://spa.example.com") && out.contains("partner surfaces: closed"),
        "{out}"
    );

    // A running node answers that origin's preflight, and refuses another.
    let (server, base) = serve(&config);
    let preflight = |origin: &'static str| {
        reqwest::Client::new()
            .request(reqwest::Method::OPTIONS, format!("{base}/v1/auth/signup"))
            .header("Origin", origin)
            .header("Access-Control-Request-Method", "POST")
            .send()
    };
    let r = preflight("https://spa.example.com").await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["access-control-allow-origin"], "https://spa.example.com");
    assert_eq!(preflight("https://other.example.com").await.unwrap().status(), 403);
    drop(server);
}

#[cfg(unix)]
#[tokio::test]
async fn sigterm_finishes_the_request_in_flight_then_exits_cleanly() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "");
    let (mut server, base) = serve(&config);
    let addr = base.strip_prefix("http://").unwrap().to_owned();
    // A signup in flight: its headers and half its body are sent.
    let body = serde_json::to_vec(&signup_body("term@acmecorp.com")).unwrap();
    let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let head = format!(
        "POST /v1/auth/signup HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(&body[..body.len() / 2]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let pid = server.0.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    tokio::time::sleep(Duration::from_millis(300)).await;
    // No new connection is taken once it is shutting down.
    let refused = match tokio::net::TcpStream::connect(&addr).await {
        Err(_) => true,
        Ok(mut s) => {
            let _ = s.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n").await;
            let mut buf = Vec::new();
            matches!(
                tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut buf)).await,
                Ok(Ok(0)) | Ok(Err(_))
            )
        }
    };
    assert!(refused, "a new connection was served after SIGTERM");
    // The request in flight is finished and answered.
    stream.write_all(&body[body.len() / 2..]).await.unwrap();
    let mut answer = String::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_string(&mut answer)).await.unwrap().unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    // Then the process exits on its own, successfully.
    let status = eventually("onramp to exit", || server.0.try_wait().unwrap()).await;
    assert!(status.success(), "{status}");
    // Its mail was committed with the signup; the next start sends it.
    let (_again, _) = serve(&config);
    eventually("the activation .eml", || read_mails(&dir.path().join("data/mail")).pop()).await;
}

#[tokio::test]
async fn metrics_can_move_to_their_own_listener_behind_a_token() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let token = "scrape-token-0123456789";
    let config =
        write_config(dir.path(), &format!("[metrics]\nlisten = \"127.0.0.1:{port}\"\ntoken = \"{token}\"\n"));
    let (_server, base) = serve(&config);
    let client = reqwest::Client::new();
    // Not on the public listener.
    assert_eq!(client.get(format!("{base}/metrics")).send().await.unwrap().status(), 404);
    let metrics = format!("http://127.0.0.1:{port}/metrics");
    let r = client.get(&metrics).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(r.headers()["www-authenticate"], "Bearer");
    assert_eq!(
        client.get(&metrics).bearer_auth("wrong-token-0123456789").send().await.unwrap().status(),
        401
    );
    let r = client.get(&metrics).bearer_auth(token).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("onramp_outbox_pending"));
    // Only /metrics there.
    assert_eq!(client.get(format!("http://127.0.0.1:{port}/healthz")).send().await.unwrap().status(), 404);
}

#[tokio::test]
async fn admin_tokens_and_users_are_managed_and_imported_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "");
    let run = |args: &[&str]| cli(&config, args);

    // A token, shown once; listed without it; it calls the admin API of the running server.
    let (ok, token, err) = run(&["admin", "token", "create", "--label", "ops laptop"]);
    assert!(ok, "{err}");
    let token = token.trim().to_owned();
    assert!(token.starts_with("oadm_") && err.contains("shown only now"), "{token} {err}");
    let (ok, listed, _) = run(&["admin", "token", "list"]);
    assert!(ok && listed.contains("ops laptop") && listed.contains("every instance, read-write"), "{listed}");
    assert!(!listed.contains(&token), "{listed}");
    let (ok, _, err) = run(&["admin", "token", "create", "--instance", "nosuch"]);
    assert!(!ok && err.contains("no such instance"), "{err}");

    // Import from a file: a bcrypt user who logs in with the old password, a refused row.
    let hash = bcrypt::hash("old-system-password", 4).unwrap();
    let file = dir.path().join("users.jsonl");
    let rows = [
        serde_json::json!({"email": "moved@example.com", "username": "moveduser", "password_hash": hash}),
        serde_json::json!({"email": "broken"}),
    ];
    std::fs::write(&file, rows.iter().map(|r| r.to_string()).collect::<Vec<_>>().join("\n")).unwrap();
    let (ok, out, err) = run(&["user", "import", "default", file.to_str().unwrap()]);
    assert!(ok, "{err}");
    assert!(out.contains("created 1, skipped 0 (already users), refused 1"), "{out}");
    assert!(err.contains("\"row\":2") && err.contains("invalid_email"), "{err}");
    let (_, again, _) = run(&["user", "import", "default", file.to_str().unwrap()]);
    assert!(again.contains("created 0, skipped 1"), "{again}");

    // Find, show, disable (the login is refused), enable, delete.
    let (ok, found, _) = run(&["user", "find", "default", "--email", "moved"]);
    assert!(ok && found.contains("moved@example.com"), "{found}");
    let id = found.lines().nth(1).unwrap().split_whitespace().next().unwrap().to_owned();
    let (ok, shown, _) = run(&["user", "show", "default", &id]);
    assert!(ok && shown.contains("status:    active"), "{shown}");
    let (server, url) = serve(&config);
    let login = |password: &'static str| {
        let url = url.clone();
        async move {
            reqwest::Client::new()
                .post(format!("{url}/v1/auth/login"))
                .json(&serde_json::json!({"username": "moveduser", "password": password}))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(login("old-system-password").await, 200);
    let users = reqwest::Client::new()
        .get(format!("{url}/admin/v1/instances/default/users?email=moved@example.com"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(users.status(), 200);
    let (ok, out, _) = run(&["user", "disable", "default", &id]);
    assert!(ok && out.contains("is inactive"), "{out}");
    assert_eq!(login("old-system-password").await, 403);
    let (ok, out, _) = run(&["user", "enable", "default", &id]);
    assert!(ok && out.contains("is active"), "{out}");
    let (ok, _, _) = run(&["user", "delete", "default", &id]);
    assert!(ok);
    assert_eq!(login("old-system-password").await, 401);
    let (ok, _, err) = run(&["user", "show", "default", "usr_nobody"]);
    assert!(!ok && err.contains("no such user"), "{err}");
    drop(server);

    let (ok, _, _) =
        run(&["admin", "token", "revoke", listed.lines().nth(1).unwrap().split_whitespace().next().unwrap()]);
    assert!(ok);
}
