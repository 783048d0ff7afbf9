//! `TestApp`: the real router on a real socket (port 0), a fresh SQLite file per test, an
//! injected clock, and the outbox worker driven by the test.

use mail_parser::MessageParser;
use onramp::app::{AppState, Ports, Service};
use onramp::config::Config;
use onramp::delivery::Worker;
use onramp_core::clock::ManualClock;
use onramp_core::token::OsTokenGenerator;
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use tempfile::TempDir;
use time::macros::datetime;

pub const DOMAIN: &str = "dom_1234567890";
pub const CLOSED_DOMAIN: &str = "dom_closed";
pub const SIGNUP_URL: &str = "http://localhost:3000/activate";

/// Which store a test runs on. Every API test runs on both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Db {
    Sqlite,
    Postgres,
}

pub const SQLITE: Db = Db::Sqlite;
pub const POSTGRES: Db = Db::Postgres;

/// What outlives one app process: the data directory and, on PostgreSQL, a database of the
/// test's own (dropped when the test ends).
pub struct TestEnv {
    pub dir: TempDir,
    pub pg: Option<onramp_store::testing::TestDatabase>,
}

impl TestEnv {
    pub async fn new(db: Db) -> Self {
        let pg = match db {
            Db::Sqlite => None,
            Db::Postgres => {
                Some(onramp_store::testing::TestDatabase::create().await.unwrap_or_else(|e| panic!("{e}")))
            }
        };
        Self { dir: tempfile::tempdir().expect("tempdir"), pg }
    }

    /// The test configuration, pointing at this environment's directory and database.
    pub fn config(&self) -> Config {
        let mut config = test_config(self.dir.path());
        if let Some(pg) = &self.pg {
            config.database_url = Some(onramp::config::Secret(pg.url.clone()));
        }
        config
    }
}

pub struct TestApp {
    pub addr: SocketAddr,
    pub client: reqwest::Client,
    pub clock: Arc<ManualClock>,
    pub worker: Worker,
    pub state: AppState,
    /// Before `env`, so it looks at the database while it still exists.
    outbox_check: OutboxCheck,
    pub env: TestEnv,
}

/// Fails a test that ends (without panicking) with messages still in the outbox, pending or
/// dead, unless it said it expects that (`TestApp::expect_undelivered`): every mail and text a
/// test causes is delivered, and so rendered, or the test says why not.
struct OutboxCheck {
    database_url: String,
    expected: std::sync::atomic::AtomicBool,
}

impl Drop for OutboxCheck {
    fn drop(&mut self) {
        if std::thread::panicking() || self.expected.load(std::sync::atomic::Ordering::SeqCst) {
            return;
        }
        let url = self.database_url.clone();
        // Drop runs outside any runtime guarantee: use a thread with a runtime of its own.
        let counts = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            rt.block_on(async move {
                let store = onramp_store::connect(&url, &Default::default()).await.expect("store");
                store.outbox_counts().await.expect("outbox counts")
            })
        })
        .join()
        .expect("outbox check");
        assert!(
            counts.pending == 0 && counts.dead == 0,
            "the test left {} pending and {} dead outbox messages: deliver them \
             (app.worker.drain()) or call app.expect_undelivered() where that is the point",
            counts.pending,
            counts.dead
        );
    }
}

/// A parsed mail from the file transport.
#[derive(Debug, Clone)]
pub struct Mail {
    pub to: String,
    pub subject: String,
    pub text: String,
    pub html: String,
    pub message_id: String,
}

pub fn test_config(dir: &std::path::Path) -> Config {
    let doc = format!(
        r#"
        listen = "127.0.0.1:0"
        data_dir = "{dir}"
        [hashing]
        memory_kib = 1024
        iterations = 1
        [outbox]
        retry_base_secs = 10
        max_attempts = 3

        [[instances]]
        name = "default"
        [[instances.apps]]
        id = "app_demo"
        name = "Demo"
        signup_url = "{SIGNUP_URL}"
        [[instances.apps.domains]]
        id = "{DOMAIN}"
        title = "Acme"
        description = "Acme customers"
        help = "Pick the domain of your company"
        [[instances.apps.domains]]
        id = "{CLOSED_DOMAIN}"
        title = "Closed"
        allow_signup = false

        [[instances]]
        name = "acme"
        [[instances.apps]]
        id = "app_acme"
        name = "Acme app"
        signup_url = "http://acme.localhost:3000/activate"
        activation_token_in_response = false
        [[instances.apps.domains]]
        id = "dom_acme"
        title = "Acme only"
        "#,
        dir = dir.display()
    );
    Config::from_toml(&doc).expect("test config")
}

impl TestApp {
    pub async fn spawn(db: Db) -> Self {
        Self::spawn_with(db, |_| {}).await
    }

    pub async fn spawn_with(db: Db, adjust: impl FnOnce(&mut Config)) -> Self {
        let env = TestEnv::new(db).await;
        let mut config = env.config();
        adjust(&mut config);
        Self::spawn_in(env, config).await
    }

    /// Start on an existing environment (a "restart" when another app used it before).
    pub async fn spawn_in(env: TestEnv, config: Config) -> Self {
        Self::spawn_with_tokens(env, config, Arc::new(OsTokenGenerator)).await
    }

    /// As `spawn_in`, with this token generator.
    pub async fn spawn_with_tokens(
        env: TestEnv,
        mut config: Config,
        tokens: Arc<dyn onramp_core::token::TokenGenerator>,
    ) -> Self {
        let clock = Arc::new(ManualClock::new(datetime!(2026-03-01 12:00 UTC)));
        // Bound first, so links onramp makes (`public_url`) point at this very server.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        if config.public_url == Config::default().public_url {
            config.public_url = format!("http://localhost:{}", addr.port());
        }
        let server = config.server.clone();
        let outbox_check = OutboxCheck { database_url: config.database_url(), expected: Default::default() };
        let service =
            Service::build(config, Ports { clock: clock.clone(), tokens }).await.expect("service builds");
        let router = service.router();
        // The server loop `onramp serve` runs, with its bounds.
        tokio::spawn(async move {
            onramp::server::serve(listener, router, &server, std::future::pending()).await.expect("serve");
        });
        Self {
            addr,
            client: reqwest::Client::new(),
            clock,
            worker: service.worker,
            state: service.state,
            outbox_check,
            env,
        }
    }

    /// Stop this app and keep its environment for the next ("a restart"); the outbox check runs
    /// now, while the environment still exists.
    pub fn into_env(self) -> TestEnv {
        let TestApp { env, outbox_check, .. } = self;
        drop(outbox_check);
        env
    }

    /// This test leaves messages in the outbox on purpose (a failing transport, a restart,
    /// a message it checks without delivering).
    pub fn expect_undelivered(&self) {
        self.outbox_check.expected.store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// A browser-like client: keeps cookies, follows redirects, and finds every
    /// `*.localhost` host (each instance) on loopback.
    pub fn browser(&self) -> reqwest::Client {
        reqwest::Client::builder()
            .cookie_store(true)
            .dns_resolver(Arc::new(Loopback))
            .build()
            .expect("client")
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// POST JSON to the default instance.
    pub async fn post(&self, path: &str, body: &Value) -> reqwest::Response {
        self.client.post(self.url(path)).json(body).send().await.expect("request")
    }

    /// POST JSON with a `Host` naming an instance.
    pub async fn post_to(&self, instance: &str, path: &str, body: &Value) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .header("host", format!("{instance}.localhost"))
            .json(body)
            .send()
            .await
            .expect("request")
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(self.url(path)).send().await.expect("request")
    }

    pub async fn signup(&self, body: &Value) -> reqwest::Response {
        self.post("/v1/auth/signup", body).await
    }

    pub async fn activate(&self, token: &str) -> reqwest::Response {
        self.post("/v1/auth/signup-activation", &json!({ "token": token })).await
    }

    pub async fn login(&self, username: &str, password: &str) -> reqwest::Response {
        self.post("/v1/auth/login", &json!({ "username": username, "password": password })).await
    }

    /// Deliver everything due, then read every mail written so far.
    pub async fn mails(&self) -> Vec<Mail> {
        self.worker.drain().await.expect("outbox drains");
        read_mails(&self.env.dir.path().join("mail"))
    }

    /// The mails to one address (as entered).
    pub async fn mails_to(&self, to: &str) -> Vec<Mail> {
        self.mails().await.into_iter().filter(|m| m.to.eq_ignore_ascii_case(to)).collect()
    }

    pub fn sqlite_path(&self) -> PathBuf {
        self.env.dir.path().join("onramp.sqlite3")
    }

    /// A read-only query returning one integer, on whichever database the test runs on.
    pub async fn count(&self, sql: &str) -> i64 {
        match &self.env.pg {
            None => {
                let pool =
                    sqlx::SqlitePool::connect(&format!("sqlite://{}?mode=ro", self.sqlite_path().display()))
                        .await
                        .expect("open db");
                let n: i64 = sqlx::query_scalar(sql).fetch_one(&pool).await.expect("count");
                pool.close().await;
                n
            }
            Some(pg) => {
                let pool = sqlx::PgPool::connect(&pg.url).await.expect("open db");
                let n: i64 = sqlx::query_scalar(sql).fetch_one(&pool).await.expect("count");
                pool.close().await;
                n
            }
        }
    }

    /// A statement that changes the database behind the service's back (to set up a case).
    pub async fn exec(&self, sql: &str) {
        match &self.env.pg {
            None => {
                let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", self.sqlite_path().display()))
                    .await
                    .expect("open db");
                sqlx::query(sql).execute(&pool).await.expect("exec");
                pool.close().await;
            }
            Some(pg) => {
                let pool = sqlx::PgPool::connect(&pg.url).await.expect("open db");
                sqlx::query(sql).execute(&pool).await.expect("exec");
                pool.close().await;
            }
        }
    }

    /// Deliver everything due, then read every text message written so far (file transport).
    pub async fn texts(&self) -> Vec<Value> {
        self.worker.drain().await.expect("outbox drains");
        let Ok(entries) = std::fs::read_dir(self.env.dir.path().join("sms")) else { return Vec::new() };
        let mut paths: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        paths.sort_by_key(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok());
        paths
            .iter()
            .map(|p| serde_json::from_slice(&std::fs::read(p).expect("read sms")).expect("sms json"))
            .collect()
    }

    /// A read-only query returning one string.
    pub async fn text(&self, sql: &str) -> String {
        match &self.env.pg {
            None => {
                let pool =
                    sqlx::SqlitePool::connect(&format!("sqlite://{}?mode=ro", self.sqlite_path().display()))
                        .await
                        .expect("open db");
                sqlx::query_scalar(sql).fetch_one(&pool).await.expect("text")
            }
            Some(pg) => {
                let pool = sqlx::PgPool::connect(&pg.url).await.expect("open db");
                sqlx::query_scalar(sql).fetch_one(&pool).await.expect("text")
            }
        }
    }

    /// Everything the database holds, as bytes: the SQLite files, or a `pg_dump`.
    pub fn database_dump(&self) -> Vec<u8> {
        match &self.env.pg {
            None => {
                let mut bytes = std::fs::read(self.sqlite_path()).expect("db file");
                let mut wal = self.sqlite_path().into_os_string();
                wal.push("-wal");
                bytes.extend(std::fs::read(&wal).unwrap_or_default());
                bytes
            }
            Some(pg) => {
                let out = std::process::Command::new("pg_dump")
                    .arg("--data-only")
                    .arg(&pg.url)
                    .output()
                    .expect("pg_dump must be installed (postgresql-client)");
                assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
                out.stdout
            }
        }
    }
}

/// Resolves every name to 127.0.0.1: `joe.localhost` is this test's server, as in a browser.
pub struct Loopback;

impl reqwest::dns::Resolve for Loopback {
    fn resolve(&self, _: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let addrs: reqwest::dns::Addrs = Box::new(std::iter::once(SocketAddr::from(([127, 0, 0, 1], 0))));
        Box::pin(std::future::ready(Ok(addrs)))
    }
}

pub fn read_mails(dir: &std::path::Path) -> Vec<Mail> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "eml"))
        .collect();
    paths.sort_by_key(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok());
    paths.iter().map(|p| parse_mail(&std::fs::read(p).expect("read eml"))).collect()
}

pub fn parse_mail(raw: &[u8]) -> Mail {
    let msg = MessageParser::default().parse(raw).expect("a parseable RFC 5322 message");
    Mail {
        to: msg.to().and_then(|a| a.first()).and_then(|a| a.address()).unwrap_or_default().to_owned(),
        subject: msg.subject().unwrap_or_default().to_owned(),
        text: msg.body_text(0).map(|t| t.into_owned()).unwrap_or_default(),
        html: msg.body_html(0).map(|t| t.into_owned()).unwrap_or_default(),
        message_id: msg.message_id().unwrap_or_default().to_owned(),
    }
}

/// A valid signup body; override fields with `with`.
pub fn signup_body(email: &str) -> Value {
    json!({
        "domain_id": DOMAIN,
        "account_title": "Acme Corp",
        "name": "June Doe",
        "username": "junedoe1",
        "password": "eomcpmdp2jp2ijvekklmlkm",
        "email": email,
        "country_id": "US"
    })
}

pub fn with(mut body: Value, changes: Value) -> Value {
    for (k, v) in changes.as_object().expect("object").iter() {
        if v.is_null() {
            body.as_object_mut().expect("object").remove(k);
        } else {
            body[k] = v.clone();
        }
    }
    body
}

/// The activation link in a mail's text part.
pub fn link_in(mail: &Mail) -> String {
    mail.text
        .split_whitespace()
        .find(|w| w.starts_with("http://") && w.contains("token="))
        .expect("an activation link")
        .to_owned()
}

/// The token in the link's query string.
pub fn token_in(mail: &Mail) -> String {
    let link = url::Url::parse(&link_in(mail)).expect("link parses");
    link.query_pairs().find(|(k, _)| k == "token").map(|(_, v)| v.into_owned()).expect("token in query")
}

/// The value on the line `Label: value` of a mail's text part.
pub fn line_value(mail: &Mail, label: &str) -> Option<String> {
    mail.text.lines().find_map(|l| l.strip_prefix(&format!("{label}: ")).map(|v| v.trim().to_owned()))
}

pub async fn json(response: reqwest::Response) -> Value {
    response.json().await.expect("json body")
}

/// Sign up, read the email, activate: an active user with `password`.
pub async fn active_user(app: &TestApp, email: &str, username: &str, password: &str) -> Value {
    let r =
        app.signup(&with(signup_body(email), json!({ "username": username, "password": password }))).await;
    assert_eq!(r.status(), 200);
    let mail = app.mails_to(email).await.pop().expect("activation mail");
    let r = app.activate(&token_in(&mail)).await;
    assert_eq!(r.status(), 200);
    json(r).await
}
