//! Which web origins may call an instance from a browser (CORS). An app lists its origins
//! (`https://app.example.com`, or `https://*.example.com` for its subdomains); the origin of its
//! `signup_url` is always allowed, so the page an activation link opens can post the token.
//! Server-to-server surfaces (partner signup, contract accounts) are open only to the origins of
//! apps that opt in.

use crate::cache::TtlCache;
use crate::error::CoreError;
use crate::model::InstanceId;
use crate::ports::Store;
use std::sync::Arc;

/// An allowed origin: exact (`scheme://host[:port]`) or every subdomain of a host
/// (`scheme://*.host[:port]`). Ports are explicit only when not the scheme's default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OriginPattern {
    scheme: String,
    /// Lower-case host, without `*.` for a wildcard.
    host: String,
    port: Option<u16>,
    subdomains: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{0:?} is not an origin: write scheme://host[:port] (or scheme://*.host for subdomains), with no path"
)]
pub struct InvalidOrigin(pub String);

impl OriginPattern {
    pub fn parse(raw: &str) -> Result<Self, InvalidOrigin> {
        let invalid = || InvalidOrigin(raw.to_owned());
        let (scheme, rest) = raw.split_once("://").ok_or_else(invalid)?;
        let scheme = scheme.to_ascii_lowercase();
        if scheme != "http" && scheme != "https" {
            return Err(invalid());
        }
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        let (subdomains, rest) = match rest.strip_prefix("*.") {
            Some(r) => (true, r),
            None => (false, rest),
        };
        // The url crate normalises the host (IDNA, case) and the port.
        let url = url::Url::parse(&format!("{scheme}://{rest}")).map_err(|_| invalid())?;
        if url.path() != "/"
            || url.query().is_some()
            || url.fragment().is_some()
            || !url.username().is_empty()
        {
            return Err(invalid());
        }
        let host = url.host_str().ok_or_else(invalid)?.to_owned();
        if subdomains && (host.starts_with('[') || host.parse::<std::net::Ipv4Addr>().is_ok()) {
            return Err(invalid());
        }
        Ok(Self { scheme, host, port: url.port(), subdomains })
    }

    /// The origin of a URL (e.g. an app's `signup_url`), if it has one.
    pub fn of_url(raw: &str) -> Option<Self> {
        let url = url::Url::parse(raw).ok()?;
        match url.origin() {
            url::Origin::Tuple(..) => Self::parse(&url.origin().ascii_serialization()).ok(),
            url::Origin::Opaque(_) => None,
        }
    }

    /// Does the `Origin` header value `origin` match?
    pub fn matches(&self, origin: &str) -> bool {
        let Ok(o) = Self::parse(origin) else { return false };
        if o.subdomains || o.scheme != self.scheme || o.port != self.port {
            return false;
        }
        if self.subdomains {
            o.host.len() > self.host.len() + 1
                && o.host.ends_with(&self.host)
                && o.host.as_bytes()[o.host.len() - self.host.len() - 1] == b'.'
        } else {
            o.host == self.host
        }
    }
}

impl std::fmt::Display for OriginPattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let wildcard = if self.subdomains { "*." } else { "" };
        write!(f, "{}://{wildcard}{}", self.scheme, self.host)?;
        if let Some(port) = self.port {
            write!(f, ":{port}")?;
        }
        Ok(())
    }
}

pub use crate::model::AppOrigins;

/// The origins allowed to call one instance's browser-facing and partner surfaces.
#[derive(Debug, Clone, Default)]
pub struct BrowserAccess {
    browser: Vec<OriginPattern>,
    partner: Vec<OriginPattern>,
}

impl BrowserAccess {
    pub fn new(apps: &[AppOrigins]) -> Self {
        let mut access = Self::default();
        for app in apps {
            let patterns: Vec<OriginPattern> = OriginPattern::of_url(&app.signup_url)
                .into_iter()
                // Stored values were checked when they were set; one that no longer parses is
                // simply not an origin.
                .chain(app.allowed_origins.iter().filter_map(|o| OriginPattern::parse(o).ok()))
                .collect();
            if app.browser_partner_calls {
                access.partner.extend(patterns.iter().cloned());
            }
            access.browser.extend(patterns);
        }
        access
    }

    /// May a page at `origin` call the instance's browser-facing endpoints?
    pub fn allows(&self, origin: &str) -> bool {
        self.browser.iter().any(|p| p.matches(origin))
    }

    /// May a page at `origin` call the partner (server-to-server) surfaces?
    pub fn allows_partner(&self, origin: &str) -> bool {
        self.partner.iter().any(|p| p.matches(origin))
    }
}

/// The browser access of each instance, read from the store and believed for a few seconds.
pub struct OriginPolicy {
    store: Arc<dyn Store>,
    clock: Arc<dyn crate::clock::Clock>,
    cache: TtlCache<InstanceId, Arc<BrowserAccess>>,
}

impl OriginPolicy {
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn crate::clock::Clock>) -> Self {
        Self { store, clock, cache: TtlCache::new() }
    }

    pub async fn for_instance(&self, instance: InstanceId) -> Result<Arc<BrowserAccess>, CoreError> {
        if let Some(found) = self.cache.get(&instance) {
            return Ok(found);
        }
        let access = Arc::new(BrowserAccess::new(&self.store.app_origins(instance).await?));
        self.cache.put(instance, access.clone());
        Ok(access)
    }

    /// The ids of an instance's apps, in the store's order.
    pub async fn for_instance_apps(&self, instance: InstanceId) -> Result<Vec<String>, CoreError> {
        Ok(self.store.app_origins(instance).await?.into_iter().map(|a| a.app_id).collect())
    }

    /// An app's browser access as stored.
    pub async fn app(&self, instance: InstanceId, app_id: &str) -> Result<AppOrigins, CoreError> {
        self.store
            .app_origins(instance)
            .await?
            .into_iter()
            .find(|a| a.app_id == app_id)
            .ok_or(CoreError::AppNotFound)
    }

    /// Replace an app's allowed origins (each checked and written in its normal form) and,
    /// when given, whether they may call the partner surfaces. Other nodes see it within the
    /// cache's lifetime.
    pub async fn set(
        &self,
        by: &crate::admin::AdminPrincipal,
        instance: InstanceId,
        app_id: &str,
        origins: &[String],
        partner: Option<bool>,
    ) -> Result<Vec<String>, SetOriginsError> {
        by.may_write(Some(instance))?;
        let normal = origins
            .iter()
            .map(|o| OriginPattern::parse(o).map(|p| p.to_string()))
            .collect::<Result<Vec<_>, _>>()?;
        if self.store.app(instance, app_id).await.map_err(CoreError::from)?.is_none() {
            return Err(CoreError::AppNotFound.into());
        }
        let mut settings = self.store.app_settings(instance, app_id).await.map_err(CoreError::from)?;
        settings.allowed_origins = normal.clone();
        if let Some(partner) = partner {
            settings.browser_partner_calls = partner;
        }
        let detail = serde_json::json!({ "allowed_origins": normal, "partner_calls_from_browsers": settings.browser_partner_calls });
        let kind = crate::audit::kinds::APP_ORIGINS_CHANGED;
        let audit = by.event(kind, Some(instance), Some(app_id.to_owned()), None, detail, self.clock.now());
        self.store
            .set_app_settings(instance, app_id, &settings, Some(&audit))
            .await
            .map_err(CoreError::from)?;
        Ok(normal)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SetOriginsError {
    #[error(transparent)]
    Invalid(#[from] InvalidOrigin),
    #[error(transparent)]
    Core(#[from] CoreError),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> OriginPattern {
        OriginPattern::parse(s).unwrap()
    }

    #[test]
    fn exact_origins_match_scheme_host_and_port() {
        let o = p("https://App.Example.com");
        assert_eq!(o.to_string(), "https://app.example.com");
        assert!(o.matches("https://app.example.com"));
        assert!(o.matches("https://app.example.com:443"));
        assert!(!o.matches("http://app.example.com"));
        assert!(!o.matches("https://app.example.com:8443"));
        assert!(!o.matches("https://evil-app.example.com"));
        assert!(!o.matches("https://app.example.com.evil.com"));
        assert!(!o.matches("null"));
        let local = p("http://localhost:3000");
        assert!(local.matches("http://localhost:3000") && !local.matches("http://localhost:3001"));
    }

    #[test]
    fn wildcards_match_subdomains_only() {
        let o = p("https://*.example.com");
        assert!(o.matches("https://a.example.com"));
        assert!(o.matches("https://a.b.example.com"));
        assert!(!o.matches("https://example.com"));
        assert!(!o.matches("https://badexample.com"));
        assert!(!o.matches("http://a.example.com"));
        assert!(!o.matches("https://*.example.com"));
    }

    #[test]
    fn what_is_not_an_origin_is_refused() {
        for bad in [
            "app.example.com",
            "ftp://example.com",
            "https://example.com/path",
            "https://example.com?q",
            "https://user@example.com",
            "https://*.127.0.0.1",
            "*",
            "",
        ] {
            assert!(OriginPattern::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_signup_url_origin_is_always_allowed_and_partner_access_is_opt_in() {
        let apps = [
            AppOrigins {
                app_id: "a".into(),
                signup_url: "http://localhost:3000/activate?x=1".into(),
                allowed_origins: vec!["https://*.example.com".into()],
                browser_partner_calls: false,
            },
            AppOrigins {
                app_id: "b".into(),
                signup_url: "https://b.test/activate".into(),
                allowed_origins: vec![],
                browser_partner_calls: true,
            },
        ];
        let access = BrowserAccess::new(&apps);
        assert!(access.allows("http://localhost:3000"));
        assert!(access.allows("https://x.example.com"));
        assert!(access.allows("https://b.test"));
        assert!(!access.allows("https://evil.test"));
        assert!(access.allows_partner("https://b.test"));
        assert!(!access.allows_partner("http://localhost:3000"));
    }
}
