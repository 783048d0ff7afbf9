//! In a real browser: Debian's Chromium, headless, driven over WebDriver (chromedriver) by
//! fantoccini. Pages served from other origins call onramp as the seeds' clients do; onramp's
//! hosted pages are filled in by typing. Each test saves screenshots under `target/browser/`.

use crate::helpers::*;
use axum::response::Html;
use fantoccini::{Client, ClientBuilder, Locator};
use onramp::config::Secret;
use serde_json::{Value, json};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";
const DF_KEY: &str = "df-spa-api-key-0123456789";
const PASSWORD: &str = "a quiet harbour at dawn";

/// A headless Chromium behind its own chromedriver; both end with it.
struct Browser {
    client: Client,
    driver: Child,
    _profile: tempfile::TempDir,
}

impl Browser {
    async fn start(language: &str) -> Self {
        assert!(
            std::path::Path::new(CHROMEDRIVER).exists() && std::path::Path::new(CHROMIUM).exists(),
            "the browser tests need Debian's chromium and chromium-driver: apt-get install chromium chromium-driver"
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let profile = tempfile::tempdir().unwrap();
        let caps = json!({
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                    "--disable-background-networking", "--disable-component-update", "--disable-sync",
                    "--disable-dev-shm-usage", "--window-size=1200,1000", "--hide-scrollbars",
                    format!("--lang={language}"), format!("--user-data-dir={}", profile.path().display()),
                ],
                "prefs": { "intl.accept_languages": language },
            }
        });
        let caps = match caps {
            Value::Object(map) => map,
            _ => unreachable!(),
        };
        let url = format!("http://127.0.0.1:{port}");
        let mut last = None;
        // chromedriver takes a moment to listen: a bounded number of tries.
        for _ in 0..50 {
            // chromedriver speaks plain HTTP on loopback: no TLS stack needed.
            let connector = hyper_util::client::legacy::connect::HttpConnector::new();
            match ClientBuilder::new(connector).capabilities(caps.clone()).connect(&url).await {
                Ok(client) => return Self { client, driver, _profile: profile },
                Err(e) => last = Some(e),
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        panic!("no WebDriver session: {last:?}");
    }

    /// Wait (bounded) for an element whose text contains `text`.
    async fn wait_text(&self, css: &str, text: &str) -> String {
        let mut seen = String::new();
        for _ in 0..100 {
            if let Ok(e) = self.client.find(Locator::Css(css)).await {
                seen = e.text().await.unwrap_or_default();
                if seen.contains(text) {
                    return seen;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("{css} never showed {text:?}; it shows {seen:?}");
    }

    async fn fill(&self, css: &str, value: &str) {
        let e = self.client.find(Locator::Css(css)).await.unwrap();
        e.clear().await.unwrap();
        e.send_keys(value).await.unwrap();
    }

    async fn click(&self, css: &str) {
        self.client.find(Locator::Css(css)).await.unwrap().click().await.unwrap();
    }

    async fn screenshot(&self, name: &str) {
        let png = self.client.screenshot().await.unwrap();
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/browser");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
    }

    /// Open a mail's HTML part as a mail client's web view would (a file, no server), and
    /// screenshot it.
    async fn show_mail(&self, mail: &Mail, name: &str) {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/browser");
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.canonicalize().unwrap().join(format!("{name}.html"));
        std::fs::write(&file, &mail.html).unwrap();
        self.client.goto(&format!("file://{}", file.display())).await.unwrap();
        self.wait_text("h1", "").await;
        self.screenshot(name).await;
    }

    /// Run `script` in the page and return what it returns.
    async fn eval(&self, script: &str) -> Value {
        self.client.execute(script, vec![]).await.unwrap()
    }

    async fn close(mut self) {
        let _ = self.client.clone().close().await;
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// A static site on its own origin (`http://127.0.0.1:{port}`), serving `pages` by path.
async fn site(pages: Vec<(&'static str, String)>) -> String {
    let mut router = axum::Router::new();
    for (path, html) in pages {
        router = router.route(path, axum::routing::get(move || async move { Html(html) }));
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    origin
}

/// onramp's address as pages reach it (`public_url`, a different origin from every site).
fn onramp_url(app: &TestApp) -> String {
    format!("http://localhost:{}", app.addr.port())
}

fn page(api: &str, script: &str) -> String {
    format!(
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Client</title>
<style>body{{font:16px system-ui;margin:2rem}} pre{{background:#f4f4f4;padding:1rem;white-space:pre-wrap}}</style></head>
<body><h1>A client on another origin</h1>
<form id="f"><select id="domain"></select> <span id="desc"></span></form>
<pre id="result">waiting</pre>
<script>const API = "{api}";
{script}
</script></body></html>"#
    )
}

#[tokio::test]
async fn seed_004s_snippets_sign_up_and_activate_from_another_origin() {
    // The app's own pages: the seed's dropdown and signup, and its activation page.
    let signup_script = r#"
fetch(API + "/v1/apps/app_demo/schema").then(r => r.json()).then(schema => {
  const domains = schema.domains;
  let options = []
  Object.keys(domains).map((id) => {
      if (domains[id].allow_signup) {
          options.push({
              value: id,
              label: domains[id].title
          })
      }
  })
  const select = document.getElementById("domain");
  options.forEach(o => select.add(new Option(o.label, o.value)));
  document.getElementById("desc").textContent = domains[select.value].description;
  return fetch(API + "/v1/auth/signup", {method: "POST", headers: {"Content-Type": "application/json"},
    body: JSON.stringify({domain_id: select.value, account_title: "Acme Corp", name: "June Doe",
      email: "junedoe@acmecorp.com", country_id: "US", password: "a quiet harbour at dawn"})});
}).then(r => r.json()).then(b => document.getElementById("result").textContent = JSON.stringify(b))
  .catch(e => document.getElementById("result").textContent = "failed: " + e);"#;
    let activate_script = r#"
var token = new URLSearchParams(window.location.hash).get('token');
fetch(API + "/v1/auth/signup-activation", {method: "POST", headers: {"Content-Type": "application/json"},
  body: JSON.stringify({token: token})})
  .then(r => r.json()).then(b => document.getElementById("result").textContent = JSON.stringify(b))
  .catch(e => document.getElementById("result").textContent = "failed: " + e);"#;
    // The site's origin must be known before onramp starts (it is the app's signup_url), and
    // onramp's before the site's pages are written: bind the site first, fill it in after.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let app =
        TestApp::spawn_with(SQLITE, |c| c.instances[0].apps[0].signup_url = format!("{origin}/activate"))
            .await;
    let api = onramp_url(&app);
    let router = axum::Router::new()
        .route("/signup", axum::routing::get(Html(page(&api, signup_script))))
        .route("/activate", axum::routing::get(Html(page(&api, activate_script))));
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });

    let browser = Browser::start("en-US").await;
    browser.client.goto(&format!("{origin}/signup")).await.unwrap();
    let answer = browser.wait_text("#result", "token").await;
    assert!(answer.starts_with("{\"token\""), "{answer}");
    let options = browser.client.find_all(Locator::Css("#domain option")).await.unwrap();
    assert_eq!(options.len(), 1, "only the domain that allows signup");
    assert_eq!(options[0].text().await.unwrap(), "Acme");
    browser.screenshot("seed004-signup-from-another-origin").await;

    app.worker.run_once().await.unwrap();
    let mail = app.mails_to("junedoe@acmecorp.com").await.remove(0);
    let link = link_in(&mail);
    assert!(link.starts_with(&format!("{origin}/activate?")) && link.contains("#&token="), "{link}");
    browser.client.goto(&link).await.unwrap();
    let answer = browser.wait_text("#result", "account_id").await;
    let activated: Value = serde_json::from_str(&answer).unwrap();
    assert!(activated["user_id"].as_str().unwrap().starts_with("usr_"), "{activated}");
    browser.screenshot("seed004-activation-from-another-origin").await;
    browser.close().await;
    assert_eq!(app.login("junedoe@acmecorp.com", PASSWORD).await.status(), 200);
}

#[tokio::test]
async fn the_hosted_signup_and_activation_pages_work_by_typing() {
    // The app's signup_url is onramp's own hosted activation page.
    let app = TestApp::spawn_with(SQLITE, |c| {
        c.instances[0].apps[0].branding.accent_color = Some("#6d28d9".into());
        c.instances[0].apps[0].branding.product_name = Some("Acme Cloud".into());
    })
    .await;
    let base = onramp_url(&app);
    // onramp's own address is known once it listens; nothing has read the app yet.
    app.exec(&format!("UPDATE apps SET signup_url = '{base}/activate' WHERE id = 'app_demo'")).await;
    let browser = Browser::start("en-US").await;
    browser.client.goto(&format!("{base}/signup?app=app_demo")).await.unwrap();
    browser.wait_text("#domain_id", "Acme").await;
    browser.wait_text("#domain-about", "Acme customers").await;
    // A first try with mistakes: the errors appear next to their fields.
    browser.fill("#account_title", "Acme Corp").await;
    browser.fill("#name", "June Doe").await;
    browser.fill("#email", "not-an-email").await;
    browser.fill("#password", "password").await;
    browser.click("button[type=submit]").await;
    browser.wait_text("#email-error", "valid email").await;
    browser.wait_text("#password-error", "too common").await;
    let country = browser.client.find(Locator::Css("#country_id")).await.unwrap();
    assert_eq!(country.prop("value").await.unwrap().as_deref(), Some("US"), "prefilled from the language");
    browser.screenshot("hosted-signup-errors").await;
    browser.fill("#email", "june@acmecorp.com").await;
    browser.fill("#password", PASSWORD).await;
    browser.click("button[type=submit]").await;
    browser.wait_text("#done", "june@acmecorp.com").await;
    browser.screenshot("hosted-signup-check-your-email").await;

    app.worker.run_once().await.unwrap();
    let link = link_in(&app.mails_to("june@acmecorp.com").await.remove(0));
    assert!(link.starts_with(&format!("{base}/activate?")), "{link}");
    browser.client.goto(&link).await.unwrap();
    browser.wait_text("#title", "Your account is active").await;
    let url = browser.client.current_url().await.unwrap();
    assert!(url.query().is_none() && url.fragment().is_none(), "the token left the address bar: {url}");
    browser.screenshot("hosted-activation").await;
    // The same link again: used.
    browser.client.goto(&link).await.unwrap();
    browser.wait_text("#text", "already used").await;
    browser.close().await;
}

/// An app with a CAPTCHA: the hosted page shows the provider's widget (its CSP lets the provider
/// in), refuses to sign up until the widget has a token, and sends the token, which onramp
/// checks with the provider's siteverify (a local fake here; the widget's script cannot load
/// without the network, so the test puts its answer where the widget would).
#[tokio::test]
async fn the_hosted_signup_page_shows_the_apps_captcha_and_sends_its_token() {
    let outside = crate::screening::Outside::default();
    let verify = outside.start().await;
    let app = TestApp::spawn_with(SQLITE, |c| {
        c.instances[0].apps[0].signup.captcha = Some(onramp::config::CaptchaConfig {
            provider: onramp_core::screening::CaptchaProvider::Turnstile,
            secret: onramp::config::Secret(crate::screening::CAPTCHA_SECRET.into()),
            site_key: Some("1x00000000000000000000AA".into()),
            verify_url: Some(format!("http://{verify}/siteverify")),
        });
    })
    .await;
    let base = onramp_url(&app);
    let page = app.client.get(format!("{base}/signup?app=app_demo")).send().await.unwrap();
    let csp = page.headers()["content-security-policy"].to_str().unwrap().to_owned();
    assert!(csp.contains("script-src 'self' https://challenges.cloudflare.com;"), "{csp}");
    assert!(csp.contains("frame-src 'none' https://challenges.cloudflare.com;"), "{csp}");
    let html = page.text().await.unwrap();
    assert!(html.contains(r#"class="cf-turnstile" data-sitekey="1x00000000000000000000AA""#), "{html}");

    let browser = Browser::start("en-US").await;
    browser.client.goto(&format!("{base}/signup?app=app_demo")).await.unwrap();
    browser.wait_text("#domain_id", "Acme").await;
    browser.fill("#account_title", "Acme Corp").await;
    browser.fill("#name", "Cap Tcha").await;
    browser.fill("#email", "captcha@acmecorp.com").await;
    browser.fill("#password", PASSWORD).await;
    browser.click("button[type=submit]").await;
    browser.wait_text("#captcha_token-error", "Solve the check that you are human").await;
    browser.screenshot("hosted-signup-captcha-required").await;
    assert_eq!(app.count("SELECT COUNT(*) FROM users").await, 0);
    // What the widget does once solved: its hidden field in the form.
    browser
        .eval(&format!(
            "const i = document.createElement('input'); i.type = 'hidden'; i.name = 'cf-turnstile-response'; \
             i.value = '{}'; document.getElementById('captcha_token').appendChild(i); return true;",
            crate::screening::GOOD_TOKEN
        ))
        .await;
    browser.click("button[type=submit]").await;
    browser.wait_text("#done", "captcha@acmecorp.com").await;
    let calls = outside.siteverify_calls.lock().unwrap().clone();
    assert_eq!(calls.len(), 1, "a missing token is refused without asking the provider");
    assert_eq!(calls[0]["response"], crate::screening::GOOD_TOKEN);
    assert_eq!(app.count("SELECT COUNT(*) FROM users WHERE email = 'captcha@acmecorp.com'").await, 1);
    browser.close().await;
    app.worker.drain().await.unwrap();
}

/// An invitation: its branded mail, whose button opens the hosted page with the address filled
/// in; a mistake is shown on the form; then the account is ready and signs in.
#[tokio::test]
async fn an_invitation_mails_a_button_to_a_page_that_creates_the_account() {
    let app = TestApp::spawn_with(SQLITE, |c| {
        c.instances[0].apps[0].branding.accent_color = Some("#0f766e".into());
        c.instances[0].apps[0].branding.product_name = Some("Acme Cloud".into());
    })
    .await;
    let admin = crate::admin::token(&app, None, false).await;
    let body = json!({"email": "ivy@acmecorp.com", "app_id": "app_demo", "role": "editor"});
    let (status, _) =
        crate::admin::call(&app, &admin, "POST", "/admin/v1/instances/default/invitations", Some(body)).await;
    assert_eq!(status, 201);
    let mail = app.mails_to("ivy@acmecorp.com").await.remove(0);
    assert_eq!(mail.subject, "You are invited to Demo");
    let browser = Browser::start("en-US").await;
    browser.show_mail(&mail, "mail-invitation").await;
    // Where the mail's button goes (it opens a new window in a mail client).
    let href = browser.eval(r#"return document.querySelector("table.button a").href"#).await;
    browser.client.goto(href.as_str().unwrap()).await.unwrap();
    browser.wait_text("h1", "Accept your invitation").await;
    let email = browser.client.find(Locator::Css("#email")).await.unwrap();
    assert_eq!(email.prop("value").await.unwrap().as_deref(), Some("ivy@acmecorp.com"));
    browser.fill("#name", "Ivy Invited").await;
    browser.fill("#password", "password").await;
    browser.click("button[type=submit]").await;
    browser.wait_text("#password-error", "too common").await;
    browser.screenshot("invitation-page-error").await;
    browser.fill("#name", "Ivy Invited").await;
    browser.fill("#password", PASSWORD).await;
    browser.click("button[type=submit]").await;
    browser.wait_text("h1", "Your account is ready").await;
    browser.screenshot("invitation-done").await;
    browser.close().await;
    assert_eq!(app.login("ivy@acmecorp.com", PASSWORD).await.status(), 200);
    app.worker.drain().await.unwrap();
}

#[tokio::test]
async fn branded_mails_read_well_on_desktop_and_phone_and_their_button_activates_the_account() {
    let app = TestApp::spawn_with(SQLITE, |c| {
        c.instances[0].apps[0].branding.accent_color = Some("#e11d48".into());
        c.instances[0].apps[0].branding.product_name = Some("Acme Cloud".into());
    })
    .await;
    let base = onramp_url(&app);
    app.exec(&format!("UPDATE apps SET signup_url = '{base}/activate' WHERE id = 'app_demo'")).await;
    let signup = signup_body("june@acmecorp.com");
    assert_eq!(app.signup(&with(signup.clone(), json!({"password": null}))).await.status(), 200);
    app.worker.run_once().await.unwrap();
    let mail = app.mails_to("june@acmecorp.com").await.remove(0);
    let browser = Browser::start("en-US").await;
    browser.show_mail(&mail, "mail-signup-activation").await;
    browser.wait_text("h1", "Activate your").await;
    // The branding: the product's name in the header and footer, the accent on the button.
    let look = browser
        .eval(
            r#"const b = document.querySelector("table.button td");
               return {bg: getComputedStyle(b).backgroundColor, ink: getComputedStyle(b.querySelector("a")).color,
                       body: document.body.innerText, href: b.querySelector("a").href,
                       plain: [...document.querySelectorAll("a")].filter(a => a.innerText === a.href).map(a => a.href)};"#,
        )
        .await;
    assert_eq!(look["bg"], "rgb(225, 29, 72)", "{look}");
    assert_eq!(look["ink"], "rgb(255, 255, 255)", "{look}");
    let body = look["body"].as_str().unwrap();
    assert!(body.contains("Acme Cloud") && body.contains("Sent by Acme Cloud"), "{body}");
    assert!(body.contains("because june@acmecorp.com was used to sign up"), "{body}");
    assert!(body.contains("Password: ") && body.contains("Username: "), "generated credentials: {body}");
    // The button and the plain link under it lead to the same place as the text part's link.
    let link = link_in(&mail);
    assert_eq!(look["href"], link.as_str());
    assert_eq!(look["plain"], json!([link]));
    // On a phone the card fills the screen and the button its width.
    browser.client.set_window_size(390, 844).await.unwrap();
    let widths = browser
        .eval(
            r#"return [document.querySelector("table.button a").getBoundingClientRect().width,
                       document.querySelector("td.card").getBoundingClientRect().width, window.innerWidth];"#,
        )
        .await;
    let [button, card, screen] = [0, 1, 2].map(|i| widths[i].as_f64().unwrap());
    assert!(card > screen * 0.85 && card <= screen, "{widths}");
    assert!(button > card * 0.8, "the button spans the card on a phone: {widths}");
    browser.screenshot("mail-signup-activation-phone").await;
    browser.client.set_window_size(1200, 1000).await.unwrap();
    // Following the button from the mail activates the account on the hosted page.
    browser.client.goto(&link).await.unwrap();
    browser.wait_text("#title", "Your account is active").await;

    // A second signup with the same address: the owner hears of it, with a way to sign in.
    assert_eq!(app.signup(&signup).await.status(), 200);
    app.worker.run_once().await.unwrap();
    let mail = app.mails_to("june@acmecorp.com").await.pop().unwrap();
    assert!(mail.subject.contains("already have"), "{}", mail.subject);
    browser.show_mail(&mail, "mail-account-exists").await;
    let href = browser.eval(r#"return document.querySelector("table.button a").href"#).await;
    assert_eq!(href, format!("{base}/activate").as_str());
    browser.close().await;
}

#[tokio::test]
async fn dreamfactorys_spa_calls_work_from_its_origin_and_another_origin_is_blocked() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let spa = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let spa_origin = spa.clone();
    let app = TestApp::spawn_with(SQLITE, move |c| {
        let inst = &mut c.instances[0];
        inst.open_registration = Some(true);
        inst.open_reg_role = Some("member".into());
        inst.apps[0].api_keys = vec![Secret(DF_KEY.into())];
        inst.apps[0].allowed_origins = Some(vec![spa_origin]);
    })
    .await;
    let api = onramp_url(&app);
    // DreamFactory's React example client: register with login=true, read the session, sign out.
    let spa_script = format!(
        r#"
const headers = {{"Content-Type": "application/json", "X-DreamFactory-API-Key": "{DF_KEY}"}};
const log = [];
(async () => {{
  let r = await fetch(API + "/api/v2/user/register?login=true", {{method: "POST", headers,
    body: JSON.stringify({{email: "spa@example.com", password: "{PASSWORD}", first_name: "Spa", last_name: "User"}})}});
  const reg = await r.json(); log.push("register " + r.status);
  const auth = {{...headers, "X-DreamFactory-Session-Token": reg.session_token}};
  r = await fetch(API + "/api/v2/user/session", {{headers: auth}}); const s = await r.json();
  log.push("session " + r.status + " " + s.email);
  r = await fetch(API + "/api/v2/user/session", {{method: "DELETE", headers: auth}}); log.push("signout " + r.status);
  r = await fetch(API + "/api/v2/user/session", {{headers: auth}}); log.push("after " + r.status);
}})().catch(e => log.push("failed: " + e)).finally(() => document.getElementById("result").textContent = log.join("\n"));"#
    );
    let router = axum::Router::new().route("/", axum::routing::get(Html(page(&api, &spa_script))));
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    // Another site, not allowed: its JSON post is stopped at the preflight.
    let evil_script = r#"
fetch(API + "/v1/auth/signup", {method: "POST", headers: {"Content-Type": "application/json"},
  body: JSON.stringify({domain_id: "dom_1234567890", account_title: "X", name: "Eve", email: "eve@example.com", country_id: "US"})})
  .then(r => document.getElementById("result").textContent = "reached: " + r.status)
  .catch(e => document.getElementById("result").textContent = "blocked: " + e.name);"#;
    let evil = site(vec![("/", page(&api, evil_script))]).await;

    let browser = Browser::start("en-US").await;
    browser.client.goto(&format!("{spa}/")).await.unwrap();
    let log = browser.wait_text("#result", "after").await;
    assert_eq!(log, "register 200\nsession 200 spa@example.com\nsignout 200\nafter 401", "{log}");
    browser.screenshot("dreamfactory-spa-from-its-origin").await;
    browser.client.goto(&format!("{evil}/")).await.unwrap();
    let blocked = browser.wait_text("#result", "blocked").await;
    assert_eq!(blocked, "blocked: TypeError");
    browser.screenshot("other-origin-blocked").await;
    browser.close().await;
    assert_eq!(app.count("SELECT COUNT(*) FROM users WHERE email = 'eve@example.com'").await, 0);
}

#[tokio::test]
async fn fast_track_from_an_html_form_lands_signed_in_on_the_new_instance() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let site_origin = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let allowed = site_origin.clone();
    let app = TestApp::spawn_with(SQLITE, move |c| {
        c.fast_track.enabled = true;
        c.fast_track.allowed_origins = vec![allowed];
    })
    .await;
    let form = format!(
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Try it</title></head><body>
<h1>Start your free instance</h1>
<form method="post" action="{}/fast-track">
<input name="email" id="email"> <input name="first-name" id="first" value="Joe"> <input name="last-name" id="last" value="Doe">
<input name="password" id="password" type="password"> <button id="go">Start</button></form></body></html>"#,
        onramp_url(&app)
    );
    let router = axum::Router::new().route("/", axum::routing::get(Html(form)));
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });

    let browser = Browser::start("en-US").await;
    browser.client.goto(&format!("{site_origin}/")).await.unwrap();
    browser.fill("#email", "joe@example.com").await;
    browser.fill("#password", PASSWORD).await;
    browser.click("#go").await;
    browser.wait_text("h1", "Welcome to joe, Joe!").await;
    let url = browser.client.current_url().await.unwrap();
    assert_eq!(url.as_str(), format!("http://joe.localhost:{}/welcome", app.addr.port()));
    browser.screenshot("fast-track-welcome").await;
    // Sign out from the welcome page.
    browser.click("form[action='/signout'] button").await;
    browser.wait_text("h1", "You are signed out").await;
    browser.client.goto(&format!("http://joe.localhost:{}/welcome", app.addr.port())).await.unwrap();
    browser.wait_text("h1", "not signed in").await;
    // The instance's home page.
    browser.client.goto(&format!("http://joe.localhost:{}/", app.addr.port())).await.unwrap();
    browser.wait_text("main", "Forgot your password?").await;
    browser.screenshot("instance-home").await;
    browser.client.goto(&format!("http://joe.localhost:{}/nothing-here", app.addr.port())).await.unwrap();
    browser.wait_text("h1", "Page not found").await;
    browser.screenshot("not-found").await;
    browser.close().await;
    app.worker.drain().await.unwrap();
}

#[tokio::test]
async fn the_confirm_page_is_completed_by_typing_in_the_readers_language() {
    let app = TestApp::spawn_with(SQLITE, |c| {
        let inst = &mut c.instances[0];
        inst.open_registration = Some(true);
        inst.open_reg_role = Some("member".into());
        inst.open_reg_email_service = Some("default".into());
        inst.default_language = Some("de".into());
        inst.apps[0].api_keys = vec![Secret(DF_KEY.into())];
    })
    .await;
    let r = app
        .client
        .post(app.url("/api/v2/user/register"))
        .header("X-DreamFactory-API-Key", DF_KEY)
        .json(&json!({"email": "conf@example.com", "first_name": "Conf"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    app.worker.run_once().await.unwrap();
    let mail = app.mails_to("conf@example.com").await.remove(0);
    let link = mail.text.split_whitespace().find(|w| w.contains("/user/confirm?")).unwrap().to_owned();
    let browser = Browser::start("de-DE").await;
    // The mail, in the instance's language, with its button, code and plain link.
    browser.show_mail(&mail, "mail-user-confirmation-de").await;
    browser.wait_text("h1", "Bestätige deine Registrierung").await;
    let href = browser.eval(r#"return document.querySelector("table.button a").href"#).await;
    assert_eq!(href, link.as_str());
    browser.client.goto(&link).await.unwrap();
    browser.wait_text("h1", "Wähle dein Passwort").await;
    browser.fill("#new_password", PASSWORD).await;
    browser.fill("#password_confirmation", "something else entirely").await;
    browser.click("button[type=submit]").await;
    browser.wait_text("#password_confirmation-error", "stimmen nicht").await;
    browser.screenshot("confirm-page-error-de").await;
    browser.fill("#new_password", PASSWORD).await;
    browser.fill("#password_confirmation", PASSWORD).await;
    browser.click("button[type=submit]").await;
    browser.wait_text("h1", "Dein Passwort ist gesetzt").await;
    browser.screenshot("confirm-page-done-de").await;
    browser.client.goto(&app.url("/user/reset")).await.unwrap();
    browser.wait_text("h1", "Passwort zurücksetzen").await;
    browser.screenshot("reset-page-de").await;
    browser.close().await;
    let r = app
        .client
        .post(app.url("/api/v2/user/session"))
        .header("X-DreamFactory-API-Key", DF_KEY)
        .json(&json!({"email": "conf@example.com", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn the_owner_of_a_squatted_address_releases_it_from_the_mail_with_one_press() {
    let app = TestApp::spawn_with(SQLITE, |c| c.fast_track.enabled = true).await;
    let squat = crate::fast_track::payload("ceo@bigcorp.example");
    assert_eq!(app.post("/fast-track", &squat).await.status(), 200);
    app.worker.drain().await.unwrap();
    let mail = app.mails_to("ceo@bigcorp.example").await.pop().unwrap();
    let instance_status = || app.text("SELECT status FROM instances WHERE name = 'ceo'");

    // The mail: "yes, it was me" as the button, "release my address" as a link beside it.
    let browser = Browser::start("en-US").await;
    browser.show_mail(&mail, "mail-fast-track-confirm").await;
    browser.wait_text("h1", "Was it you who created ceo?").await;
    let links = browser
        .eval(
            r#"return {confirm: document.querySelector("table.button a").href,
                       release: [...document.querySelectorAll("a")].find(a => a.innerText === "Release my address").href};"#,
        )
        .await;
    let release = links["release"].as_str().unwrap().to_owned();
    assert!(links["confirm"].as_str().unwrap().contains("/fast-track/confirm?token="), "{links}");
    assert!(release.contains("/fast-track/release?token="), "{links}");

    // Following the link shows a page with one button; only pressing it releases the address.
    browser.client.goto(&release).await.unwrap();
    browser.wait_text("h1", "Release your address").await;
    browser.wait_text("dl.facts", "ceo@bigcorp.example").await;
    browser.screenshot("fast-track-release").await;
    assert_eq!(instance_status().await, "active", "opening the link changes nothing");
    browser.click("form button[type=submit]").await;
    browser.wait_text("h1", "Address released").await;
    browser.wait_text("main", "ceo is switched off and ceo@bigcorp.example is free again").await;
    browser.screenshot("fast-track-released").await;
    assert_eq!(instance_status().await, "disabled");
    // The address is its owner's to use now.
    assert_eq!(app.post("/fast-track", &squat).await.status(), 200);
    browser.close().await;
    app.worker.drain().await.unwrap();
}

/// The console's invitations: send one, see it pending, revoke it; a read-only token sees the
/// list without the forms.
#[tokio::test]
async fn the_console_sends_and_revokes_an_invitation() {
    let app = TestApp::spawn(SQLITE).await;
    let base = onramp_url(&app);
    let token = crate::admin::token(&app, None, false).await;
    let browser = Browser::start("en-US").await;
    browser.client.goto(&format!("{base}/admin")).await.unwrap();
    browser.fill("#token", &token).await;
    browser.click("button[type=submit]").await;
    browser.wait_text("h1", "Instances").await;
    browser.client.goto(&format!("{base}/admin/instances/default")).await.unwrap();
    browser.client.find(Locator::LinkText("Invitations")).await.unwrap().click().await.unwrap();
    browser.wait_text("h1", "Invitations").await;
    browser.fill("#invite-email", "newcomer@acmecorp.com").await;
    browser.fill("#invite-role", "editor").await;
    browser.click("section.card button[type=submit]").await;
    browser.wait_text(".notice", "on its way").await;
    browser.wait_text("#invitations", "newcomer@acmecorp.com").await;
    browser.wait_text("#invitations", "pending").await;
    browser.screenshot("console-invitations").await;
    assert_eq!(app.mails_to("newcomer@acmecorp.com").await.len(), 1);
    browser.click("#invitations button.danger").await;
    browser.wait_text("#invitations", "revoked").await;
    assert_eq!(app.count("SELECT COUNT(*) FROM invitations WHERE revoked_at IS NOT NULL").await, 1);
    browser.close().await;

    let read_only = crate::admin::token(&app, None, true).await;
    let browser = Browser::start("en-US").await;
    browser.client.goto(&format!("{base}/admin")).await.unwrap();
    browser.fill("#token", &read_only).await;
    browser.click("button[type=submit]").await;
    browser.wait_text("h1", "Instances").await;
    browser.client.goto(&format!("{base}/admin/instances/default/invitations")).await.unwrap();
    let page = browser.wait_text("main", "newcomer@acmecorp.com").await;
    assert!(!page.contains("Send invitation") && !page.contains("Revoke"), "{page}");
    browser.close().await;
    app.worker.drain().await.unwrap();
}

#[tokio::test]
async fn the_console_signs_in_finds_a_user_disables_them_and_retries_a_dead_letter() {
    let app = TestApp::spawn(SQLITE).await;
    let base = onramp_url(&app);
    for (email, username) in [("june@acmecorp.com", "junedoe1"), ("jack@acmecorp.com", "jackdoe1")] {
        active_user(&app, email, username, PASSWORD).await;
    }
    // A letter the mail server refused for good.
    let r = app.signup(&with(signup_body("bounced@acmecorp.com"), json!({"username": "bounced1"}))).await;
    assert_eq!(r.status(), 200);
    app.exec("UPDATE outbox SET status = 'dead', attempts = 10, last_error = '550 5.1.1 mailbox unavailable' WHERE status = 'pending'").await;
    let token = crate::admin::token(&app, None, false).await;

    let browser = Browser::start("en-US").await;
    browser.client.goto(&format!("{base}/admin")).await.unwrap();
    browser.wait_text("h1", "Sign in to the console").await;
    browser.fill("#token", "oadm_wrong").await;
    browser.click("button[type=submit]").await;
    browser.wait_text("#error", "not a live admin token").await;
    browser.screenshot("console-sign-in").await;
    browser.fill("#token", &token).await;
    browser.click("button[type=submit]").await;
    browser.wait_text("h1", "Instances").await;
    browser.wait_text("table", "default").await;
    browser.screenshot("console-instances").await;
    // The cookie is not for scripts.
    assert_eq!(browser.eval("return document.cookie").await, json!(""));

    // Find a user by the start of their address; open them; disable them.
    browser.client.find(Locator::LinkText("default")).await.unwrap().click().await.unwrap();
    browser.wait_text("h1", "default").await;
    browser.wait_text("section.card", "API keys").await;
    // A key for the app, shown once; then revoked.
    browser.fill("input[name=label]", "billing service").await;
    browser.click("section.card form:last-of-type button").await;
    let shown = browser.wait_text("#new-key", "ork_").await;
    let key = shown.split_whitespace().last().unwrap().to_owned();
    let dp = app
        .client
        .post(app.url("/user/basic"))
        .header("X-Api-Key", &key)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_ne!(dp.status(), 401, "the new key is live");
    browser.screenshot("console-instance").await;
    browser.click("section.card table button.danger").await;
    browser.wait_text("#done", "The key is revoked").await;
    let dp = app
        .client
        .post(app.url("/user/basic"))
        .header("X-Api-Key", &key)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(dp.status(), 401, "the revoked key is not");
    browser.fill("#q", "june").await;
    browser.click("form.search button").await;
    browser.wait_text("#users", "june@acmecorp.com").await;
    let rows = browser.client.find_all(Locator::Css("#users tbody tr")).await.unwrap();
    assert_eq!(rows.len(), 1, "only June matches");
    browser.client.find(Locator::LinkText("june@acmecorp.com")).await.unwrap().click().await.unwrap();
    browser.wait_text("#trail", "user.activated").await;
    browser.click("#action-disable").await;
    browser.wait_text("#done", "The user is disabled").await;
    browser.wait_text("#status", "inactive").await;
    browser.wait_text("#trail", "user.disabled").await;
    browser.screenshot("console-user").await;
    assert_eq!(app.login("junedoe1", PASSWORD).await.status(), 403, "the disabled user cannot log in");

    // The dead letter, with why; retried, and then delivered.
    browser.click("nav a[href^='/admin/outbox']").await;
    browser.wait_text("#messages", "550 5.1.1 mailbox unavailable").await;
    browser.wait_text("#messages", "b***@acmecorp.com").await;
    browser.screenshot("console-outbox").await;
    browser.click("#messages button").await;
    browser.wait_text("#done", "due again").await;
    app.worker.drain().await.unwrap();
    assert_eq!(app.mails_to("bounced@acmecorp.com").await.len(), 1, "delivered after the retry");

    browser.click("nav a[href='/admin/audit']").await;
    browser.wait_text("#audit", "outbox.retried").await;
    browser.screenshot("console-audit").await;
    browser.click(".console-bar button").await;
    browser.wait_text("h1", "Sign in to the console").await;
    browser.client.goto(&format!("{base}/admin/outbox")).await.unwrap();
    browser.wait_text("h1", "Sign in to the console").await;
    browser.close().await;
}
