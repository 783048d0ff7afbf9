//! The pages onramp serves to browsers, in one small design system: an embedded stylesheet
//! (`/assets/onramp.css`), two embedded scripts, minijinja templates, strings in en/nl/de/fr/es
//! chosen by `Accept-Language`, and branding per instance and app (`product_name`, `logo_url`,
//! `accent_color`). Every page is `no-store`, not framed, and under a CSP that allows only
//! onramp's own assets (plus the logo's origin, and the page's one inline style by its hash).
//!
//! - [`account`]: the `/v1` signup and activation pages, DreamFactory's confirm and reset pages;
//! - [`claim`]: the pages of FastTrack's confirmation mail ("this was me" / "this was not me");
//! - [`instance`]: the instance home `/`, FastTrack's welcome page and sign-out, HTML errors.

pub mod account;
pub mod claim;
pub mod instance;
pub mod invitation;

use crate::branding::Brand;
use crate::http::AppState;
use axum::Router;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use minijinja::{AutoEscape, Environment, Value, context};
use onramp_core::CoreError;
use onramp_core::screening::CaptchaProvider;
use sha2::{Digest, Sha256};
use std::collections::HashMap;

pub const SESSION_COOKIE: &str = "onramp_session";

/// The languages every page ships in; the first is the fallback.
pub const LANGUAGES: [&str; 5] = ["en", "nl", "de", "fr", "es"];

pub fn routes() -> Router<AppState> {
    use onramp_core::open_registration::CONFIRM_PAGE_PATH;
    use onramp_core::provision::{CONFIRM_CLAIM_PATH, RELEASE_CLAIM_PATH, WELCOME_PATH};
    Router::new()
        .route("/", get(instance::home))
        .route(WELCOME_PATH, get(instance::welcome))
        .route("/signout", post(instance::sign_out))
        .route("/signup", get(account::signup))
        .route("/activate", get(account::activate))
        .route(onramp_core::invitations::INVITATION_PATH, get(invitation::form).post(invitation::accept))
        .route(CONFIRM_PAGE_PATH, get(account::confirm_form).post(account::confirm))
        .route(account::RESET_PAGE_PATH, get(account::reset_form).post(account::reset))
        .route(CONFIRM_CLAIM_PATH, get(claim::confirm_page).post(claim::confirm))
        .route(RELEASE_CLAIM_PATH, get(claim::release_page).post(claim::release))
        .route("/assets/{file}", get(instance::asset))
}

/// The templates and the strings of every language, embedded.
pub struct Pages {
    env: Environment<'static>,
    strings: HashMap<&'static str, Value>,
    /// The same strings as JSON, for the pages' scripts.
    strings_json: HashMap<&'static str, String>,
}

#[rustfmt::skip]
const TEMPLATES: [(&str, &str); 20] = [
    ("layout.html", include_str!("../../../templates/pages/layout.html")),
    ("message.html", include_str!("../../../templates/pages/message.html")),
    ("welcome.html", include_str!("../../../templates/pages/welcome.html")),
    ("confirm.html", include_str!("../../../templates/pages/confirm.html")),
    ("invitation.html", include_str!("../../../templates/pages/invitation.html")),
    ("reset.html", include_str!("../../../templates/pages/reset.html")),
    ("signup.html", include_str!("../../../templates/pages/signup.html")),
    ("activate.html", include_str!("../../../templates/pages/activate.html")),
    ("home.html", include_str!("../../../templates/pages/home.html")),
    ("claim.html", include_str!("../../../templates/pages/claim.html")),
    ("console/layout.html", include_str!("../../../templates/console/layout.html")),
    ("console/message.html", include_str!("../../../templates/console/message.html")),
    ("console/signin.html", include_str!("../../../templates/console/signin.html")),
    ("console/home.html", include_str!("../../../templates/console/home.html")),
    ("console/instance.html", include_str!("../../../templates/console/instance.html")),
    ("console/users.html", include_str!("../../../templates/console/users.html")),
    ("console/invitations.html", include_str!("../../../templates/console/invitations.html")),
    ("console/user.html", include_str!("../../../templates/console/user.html")),
    ("console/outbox.html", include_str!("../../../templates/console/outbox.html")),
    ("console/audit.html", include_str!("../../../templates/console/audit.html")),
];

#[rustfmt::skip]
const STRINGS: [(&str, &str); 5] = [
    ("en", include_str!("../../../templates/pages/i18n/en.json")),
    ("nl", include_str!("../../../templates/pages/i18n/nl.json")),
    ("de", include_str!("../../../templates/pages/i18n/de.json")),
    ("fr", include_str!("../../../templates/pages/i18n/fr.json")),
    ("es", include_str!("../../../templates/pages/i18n/es.json")),
];

#[derive(Debug, thiserror::Error)]
pub enum PagesError {
    #[error(transparent)]
    Template(#[from] minijinja::Error),
    #[error("page strings ({0}): {1}")]
    Strings(&'static str, serde_json::Error),
}

impl Pages {
    pub fn new() -> Result<Self, PagesError> {
        let mut env = Environment::new();
        env.set_auto_escape_callback(|_| AutoEscape::Html);
        // Optional context (a form's field errors) may be absent altogether.
        env.set_undefined_behavior(minijinja::UndefinedBehavior::Chainable);
        for (name, source) in TEMPLATES {
            env.add_template(name, source)?;
        }
        let mut strings = HashMap::new();
        let mut strings_json = HashMap::new();
        for (lang, source) in STRINGS {
            let map: serde_json::Map<String, serde_json::Value> =
                serde_json::from_str(source).map_err(|e| PagesError::Strings(lang, e))?;
            // `<` never reaches the page's JSON block as itself, so no `</script>` can close it.
            strings_json
                .insert(lang, serde_json::Value::Object(map.clone()).to_string().replace('<', "\\u003c"));
            strings.insert(lang, Value::from_serialize(&map));
        }
        Ok(Self { env, strings, strings_json })
    }

    pub fn render(&self, look: &Look, status: StatusCode, name: &str, ctx: Value) -> Response {
        let lang = look.lang;
        let full = context! {
            lang,
            t => self.strings.get(lang).cloned().unwrap_or_default(),
            strings_json => Value::from_safe_string(self.strings_json.get(lang).cloned().unwrap_or_default()),
            brand => context! { name => look.brand.name, logo_url => look.brand.logo_url, initial => look.brand.initial() },
            accent_css => look.accent_css(),
            ..ctx
        };
        match self.env.get_template(name).and_then(|t| t.render(full)) {
            Ok(html) => {
                let mut response = (status, Html(html)).into_response();
                look.secure(response.headers_mut());
                response
            }
            Err(e) => {
                tracing::error!(error = %e, template = name, "page failed to render");
                (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
            }
        }
    }

    /// A page of one title and one sentence (both string keys).
    pub fn message(&self, look: &Look, status: StatusCode, title: &str, text: &str) -> Response {
        self.render(look, status, "message.html", self.message_context(look, status, title, text))
    }

    fn message_context(&self, look: &Look, status: StatusCode, title: &str, text: &str) -> Value {
        let t = |key: &str| self.text(look.lang, key);
        let state = if status.is_success() { "ok" } else { "error" };
        let code = matches!(status.as_u16(), 404 | 413 | 429).then(|| status.as_u16());
        context! { title => t(title), message => t(text), state, code, home => !status.is_success() || code.is_some() }
    }

    /// One string in `lang` (English where that language lacks it).
    pub fn text(&self, lang: &str, key: &str) -> String {
        let find =
            |l: &str| self.strings.get(l).and_then(|m| m.get_attr(key).ok()).filter(|v| !v.is_undefined());
        find(lang).or_else(|| find("en")).map(|v| v.to_string()).unwrap_or_else(|| key.to_owned())
    }

    /// A core error as a page.
    pub fn error(&self, look: &Look, e: &CoreError) -> Response {
        let (status, title, text) = match e {
            CoreError::InstanceNotFound => (StatusCode::NOT_FOUND, "no_instance_title", "no_instance_text"),
            CoreError::TokenNotFound | CoreError::TokenUsed => {
                (StatusCode::BAD_REQUEST, "link_invalid_title", "link_invalid_text")
            }
            CoreError::TokenExpired => (StatusCode::GONE, "link_expired_title", "link_expired_text"),
            CoreError::SessionInvalid => {
                (StatusCode::UNAUTHORIZED, "not_signed_in_title", "not_signed_in_text")
            }
            CoreError::RateLimited { .. } => (StatusCode::TOO_MANY_REQUESTS, "e429_title", "e429_text"),
            CoreError::Busy { .. } | CoreError::Unavailable(_) => {
                (StatusCode::SERVICE_UNAVAILABLE, "e503_title", "e503_text")
            }
            other => {
                tracing::error!(error = %other, "page failed");
                (StatusCode::INTERNAL_SERVER_ERROR, "e500_title", "e500_text")
            }
        };
        crate::http::with_retry_after(self.message(look, status, title, text), e.retry_after())
    }
}

/// How one page looks: its language and branding.
#[derive(Debug, Clone)]
pub struct Look {
    pub lang: &'static str,
    pub brand: Brand,
    /// The CAPTCHA widget the page shows, whose provider the CSP lets in.
    pub captcha: Option<CaptchaProvider>,
}

impl Look {
    /// The reader's language and the branding of `instance` (and `app`, when the page is one
    /// app's), see [`Brand::resolve`].
    pub fn of(state: &AppState, headers: &HeaderMap, instance: &str, app: Option<(&str, &str)>) -> Self {
        Self { lang: language(headers), brand: Brand::resolve(&state.config, instance, app), captcha: None }
    }

    /// The page's one inline style: the accent colour (validated as `#rrggbb` at start).
    fn accent_css(&self) -> String {
        format!(":root{{--accent:{};--accent-ink:{}}}", self.brand.accent, self.brand.ink())
    }

    /// Pages carry secrets in forms and links: not cached, not framed, no referrer, and only
    /// onramp's own assets.
    fn secure(&self, headers: &mut HeaderMap) {
        let style_hash = base64_sha256(self.accent_css().as_bytes());
        let logo = self
            .brand
            .logo_url
            .as_deref()
            .and_then(onramp_core::origin::OriginPattern::of_url)
            .map(|o| format!(" {o}"))
            .unwrap_or_default();
        let (scripts, frames) = self.captcha.map(captcha_sources).unwrap_or_default();
        let csp = format!(
            "default-src 'none'; style-src 'self' 'sha256-{style_hash}'{frames}; script-src 'self'{scripts}; \
             connect-src 'self'{frames}; img-src 'self'{logo}; frame-src 'none'{frames}; form-action 'self'; \
             frame-ancestors 'none'; base-uri 'none'"
        );
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
        headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
        headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
        headers.insert(header::CONTENT_LANGUAGE, HeaderValue::from_static(self.lang));
        headers.insert(header::VARY, HeaderValue::from_static("Accept-Language"));
        if let Ok(v) = HeaderValue::from_str(&csp) {
            headers.insert(header::CONTENT_SECURITY_POLICY, v);
        }
    }
}

/// What a CAPTCHA provider's widget loads: its scripts, and what it frames, styles and calls
/// (each with a leading space, for the CSP).
fn captcha_sources(provider: CaptchaProvider) -> (&'static str, &'static str) {
    match provider {
        CaptchaProvider::Turnstile => {
            (" https://challenges.cloudflare.com", " https://challenges.cloudflare.com")
        }
        CaptchaProvider::Hcaptcha => (
            " https://js.hcaptcha.com https://hcaptcha.com https://*.hcaptcha.com",
            " https://hcaptcha.com https://*.hcaptcha.com",
        ),
        CaptchaProvider::Recaptcha => (
            " https://www.google.com/recaptcha/ https://www.gstatic.com/recaptcha/",
            " https://www.google.com/recaptcha/ https://recaptcha.google.com/recaptcha/",
        ),
    }
}

fn base64_sha256(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(Sha256::digest(bytes))
}

/// The reader's language: the first of `Accept-Language` (by weight) that the pages ship in.
pub fn language(headers: &HeaderMap) -> &'static str {
    let mut wanted: Vec<(f32, String)> = headers
        .get_all(header::ACCEPT_LANGUAGE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|part| {
            let mut bits = part.trim().split(';');
            let tag = bits.next()?.trim().to_ascii_lowercase();
            let q = bits
                .find_map(|b| b.trim().strip_prefix("q=").and_then(|q| q.parse::<f32>().ok()))
                .unwrap_or(1.0);
            Some((q, tag))
        })
        .collect();
    wanted.sort_by(|a, b| b.0.total_cmp(&a.0));
    wanted
        .iter()
        .filter(|(q, _)| *q > 0.0)
        .find_map(|(_, tag)| LANGUAGES.iter().find(|l| tag.split('-').next() == Some(**l)).copied())
        .unwrap_or(LANGUAGES[0])
}

/// The region of the reader's first language (`en-US` -> `US`), to prefill a country.
pub fn region(headers: &HeaderMap) -> Option<String> {
    let first = headers.get(header::ACCEPT_LANGUAGE)?.to_str().ok()?.split(',').next()?;
    let region = first.split(';').next()?.trim().split('-').nth(1)?;
    (region.len() == 2 && region.chars().all(|c| c.is_ascii_alphabetic()))
        .then(|| region.to_ascii_uppercase())
}

/// The value of cookie `name`, if sent.
pub fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

fn query_value(query: Option<&str>, name: &str) -> Option<String> {
    url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// Is this a form posted from one of this very host's pages? (`Origin`, or `Referer` when a
/// browser sends no `Origin`, must name the host the form was posted to.)
pub fn same_origin_post(headers: &HeaderMap) -> bool {
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or_default();
    let source = headers
        .get(header::ORIGIN)
        .or_else(|| headers.get(header::REFERER))
        .and_then(|v| v.to_str().ok())
        .and_then(|v| url::Url::parse(v).ok());
    match source {
        Some(url) => {
            let authority = match url.port() {
                Some(port) => format!("{}:{port}", url.host_str().unwrap_or_default()),
                None => url.host_str().unwrap_or_default().to_owned(),
            };
            authority.eq_ignore_ascii_case(host)
        }
        // Neither header: not a browser's cross-site post (browsers send Origin on every POST).
        None => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::ACCEPT_LANGUAGE, HeaderValue::from_str(v).unwrap());
        h
    }

    #[test]
    fn the_language_is_the_readers_best_that_we_ship() {
        assert_eq!(language(&HeaderMap::new()), "en");
        assert_eq!(language(&accept("nl-BE,nl;q=0.9,en;q=0.8")), "nl");
        assert_eq!(language(&accept("ja, fr;q=0.5, de;q=0.7")), "de");
        assert_eq!(language(&accept("es;q=0, fr;q=0.1")), "fr");
        assert_eq!(language(&accept("zz")), "en");
        assert_eq!(region(&accept("en-US,en;q=0.9")), Some("US".into()));
        assert_eq!(region(&accept("de")), None);
    }

    #[test]
    fn cookies_are_found_by_exact_name() {
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, HeaderValue::from_static("a=1; onramp_session_x=2; onramp_session=abc.def"));
        assert_eq!(cookie(&h, SESSION_COOKIE), Some("abc.def"));
        assert_eq!(cookie(&h, "missing"), None);
    }

    #[test]
    fn every_language_has_every_string_and_every_page_renders_escaped() {
        let pages = Pages::new().unwrap();
        let en: serde_json::Map<String, serde_json::Value> = serde_json::from_str(STRINGS[0].1).unwrap();
        for (lang, source) in STRINGS {
            let map: serde_json::Map<String, serde_json::Value> = serde_json::from_str(source).unwrap();
            let missing: Vec<&String> = en.keys().filter(|k| !map.contains_key(*k)).collect();
            assert!(missing.is_empty(), "{lang} lacks {missing:?}");
            if lang != "en" {
                let same: Vec<&String> = en.keys().filter(|k| map[*k] == en[*k] && k.len() > 12).collect();
                assert!(same.len() < 3, "{lang} leaves {same:?} in English");
            }
        }
        let brand = Brand { name: "<b>Acme</b>".into(), logo_url: None, accent: "#123456".into() };
        let look = Look { lang: "de", brand, captcha: None };
        for name in [
            "signup.html",
            "activate.html",
            "confirm.html",
            "reset.html",
            "home.html",
            "message.html",
            "claim.html",
        ] {
            let r = pages.render(
                &look,
                StatusCode::OK,
                name,
                context! { title => "t", message => "m", app_id => "a" },
            );
            assert_eq!(r.status(), StatusCode::OK, "{name}");
        }
        let html = pages.env.get_template("message.html").unwrap();
        let out = html
            .render(context! { title => "<b>x</b>", message => "m", brand => context!{ name => "<i>" }, t => pages.strings["en"].clone() })
            .unwrap();
        assert!(out.contains("&lt;b&gt;x") && !out.contains("<b>x") && !out.contains("<i>"), "{out}");
    }
}
