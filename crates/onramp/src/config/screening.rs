//! What a signup must pass before anything is written: `[signup]` rules (global, per instance,
//! per app: CAPTCHA, disposable and denied domains), `[hooks.before_signup]` (global, per
//! instance) and `[passwords.breach_check]`.

use super::*;
use onramp_core::events::{Subscription, Subscriptions};
use onramp_core::screening::{
    BreachCheck, Captcha, CaptchaProvider, ScreeningRules, SignupHook, SignupRules,
};

/// `[signup]`, `[instances.signup]`, `[instances.apps.signup]`: each key left out is taken
/// from the enclosing level (app -> instance -> global -> off).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SignupRulesConfig {
    /// Verify a CAPTCHA token on every signup.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub captcha: Option<CaptchaConfig>,
    /// Refuse addresses at known disposable-mail domains (the list `mailchecker` maintains).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub block_disposable_email: Option<bool>,
    /// Only addresses at these domains (and their subdomains) may sign up.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email_domains_allow: Option<Vec<String>>,
    /// Addresses at these domains (and their subdomains) may not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email_domains_deny: Option<Vec<String>>,
    /// Only an address holding a live invitation (to the app) may sign up, on every surface.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub invite_only: Option<bool>,
}

impl SignupRulesConfig {
    /// `self`, with what it leaves unset taken from `outer`.
    pub fn over(&self, outer: &SignupRulesConfig) -> SignupRulesConfig {
        SignupRulesConfig {
            captcha: self.captcha.clone().or_else(|| outer.captcha.clone()),
            block_disposable_email: self.block_disposable_email.or(outer.block_disposable_email),
            email_domains_allow: self
                .email_domains_allow
                .clone()
                .or_else(|| outer.email_domains_allow.clone()),
            email_domains_deny: self.email_domains_deny.clone().or_else(|| outer.email_domains_deny.clone()),
            invite_only: self.invite_only.or(outer.invite_only),
        }
    }

    fn rules(&self, hook: Option<&BeforeSignupHookConfig>) -> SignupRules {
        let lower = |list: &Option<Vec<String>>| {
            list.iter().flatten().map(|d| d.trim().trim_start_matches('@').to_ascii_lowercase()).collect()
        };
        SignupRules {
            block_disposable_email: self.block_disposable_email.unwrap_or(false),
            invite_only: self.invite_only.unwrap_or(false),
            email_domains_allow: lower(&self.email_domains_allow),
            email_domains_deny: lower(&self.email_domains_deny),
            captcha: self.captcha.as_ref().map(|c| Captcha {
                provider: c.provider,
                site_key: c.site_key.clone(),
                secret: c.secret.0.clone(),
                verify_url: c.verify_url.clone().unwrap_or_else(|| c.provider.verify_url().to_owned()),
            }),
            before_signup: hook.map(|h| SignupHook {
                url: h.url.clone(),
                secret: h.secret.0.clone(),
                timeout: std::time::Duration::from_millis(h.timeout_ms),
                reject_on_failure: h.on_failure == FailurePolicy::Reject,
            }),
        }
    }

    pub(super) fn problems(&self, at: &str) -> Vec<String> {
        let mut problems = Vec::new();
        if let Some(c) = &self.captcha {
            if c.secret.0.trim().is_empty() {
                problems.push(format!("{at}signup.captcha.secret: required"));
            }
            if let Some(u) = &c.verify_url
                && !is_http_url(u)
            {
                problems.push(format!("{at}signup.captcha.verify_url: {u:?} is not an http(s) URL"));
            }
        }
        for (key, list) in [
            ("email_domains_allow", &self.email_domains_allow),
            ("email_domains_deny", &self.email_domains_deny),
        ] {
            for d in list.iter().flatten() {
                let d = d.trim().trim_start_matches('@');
                if d.is_empty() || d.contains(['@', '/', ' ']) || !d.contains('.') {
                    problems.push(format!("{at}signup.{key}: {d:?} is not a domain like example.com"));
                }
            }
        }
        problems
    }
}

/// A CAPTCHA provider's keys.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CaptchaConfig {
    pub provider: CaptchaProvider,
    /// The secret the provider's siteverify API takes.
    pub secret: Secret,
    /// The public key the hosted signup page's widget shows (without it the page shows none,
    /// and only callers that bring their own widget can sign up).
    #[serde(default)]
    pub site_key: Option<String>,
    /// Another siteverify endpoint (a proxy, or a test's fake); the provider's by default.
    #[serde(default)]
    pub verify_url: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum FailurePolicy {
    /// Refuse the signup (503, try again) when the check cannot be made.
    #[default]
    Reject,
    /// Let the signup through (logged) when the check cannot be made.
    Allow,
}

/// `[hooks]` and `[instances.hooks]`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct HooksConfig {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub before_signup: Option<BeforeSignupHookConfig>,
}

/// The operator's endpoint asked about every signup before anything is written.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct BeforeSignupHookConfig {
    pub url: String,
    /// `whsec_<base64>`: the Standard Webhooks signing secret.
    pub secret: Secret,
    #[serde(default = "hook_timeout_ms")]
    pub timeout_ms: u64,
    #[serde(default)]
    pub on_failure: FailurePolicy,
}

fn hook_timeout_ms() -> u64 {
    2000
}

/// `[passwords.breach_check]`: the k-anonymity range protocol of Pwned Passwords.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct BreachCheckConfig {
    #[serde(default = "pwned_passwords")]
    pub url: String,
    #[serde(default = "allow")]
    pub on_failure: FailurePolicy,
    #[serde(default = "hook_timeout_ms")]
    pub timeout_ms: u64,
}

fn pwned_passwords() -> String {
    "https://api.pwnedpasswords.com/range/".into()
}

fn allow() -> FailurePolicy {
    FailurePolicy::Allow
}

fn is_http_url(u: &str) -> bool {
    url::Url::parse(u).is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
}

/// Whether `secret` is a Standard Webhooks secret: `whsec_` and base64 of 24 to 64 bytes.
pub fn is_webhook_secret(secret: &str) -> bool {
    use base64::Engine;
    secret
        .strip_prefix("whsec_")
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
        .is_some_and(|key| (24..=64).contains(&key.len()))
}

/// An endpoint told about lifecycle events after the fact (`[[webhooks]]` for every instance,
/// `[[instances.webhooks]]` for one), through the outbox.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct EventWebhookConfig {
    pub url: String,
    /// `whsec_<base64>`: the Standard Webhooks signing secret.
    pub secret: Secret,
    /// The secret being rotated out: it signs too (a second signature) until
    /// `previous_secret_expires_at`, so receivers can switch at their pace.
    #[serde(default)]
    pub previous_secret: Option<Secret>,
    /// RFC 3339, e.g. `2026-12-01T00:00:00Z`.
    #[serde(default)]
    pub previous_secret_expires_at: Option<String>,
    /// Event types this endpoint gets (see the README's catalogue); empty: every type.
    #[serde(default)]
    pub events: Vec<String>,
    #[serde(default = "event_timeout_secs")]
    pub timeout_secs: u64,
}

fn event_timeout_secs() -> u64 {
    10
}

impl EventWebhookConfig {
    pub(super) fn problems(&self, at: &str) -> Vec<String> {
        let mut problems = Vec::new();
        if !is_http_url(&self.url) {
            problems.push(format!("{at}webhooks: {:?} is not an http(s) URL", self.url));
        }
        if !is_webhook_secret(&self.secret.0) {
            problems.push(format!(
                "{at}webhooks[{}].secret: must be whsec_ and base64 of 24 to 64 bytes",
                self.url
            ));
        }
        match (&self.previous_secret, &self.previous_secret_expires_at) {
            (None, None) => {}
            (Some(s), Some(until))
                if is_webhook_secret(&s.0)
                    && time::OffsetDateTime::parse(until, &time::format_description::well_known::Rfc3339).is_ok() => {}
            _ => problems.push(format!(
                "{at}webhooks[{}]: previous_secret (whsec_…) and previous_secret_expires_at (RFC 3339) go together",
                self.url
            )),
        }
        for e in &self.events {
            if !onramp_core::events::types::ALL.contains(&e.as_str()) {
                problems.push(format!(
                    "{at}webhooks[{}].events: {e:?} is not one of {}",
                    self.url,
                    onramp_core::events::types::ALL.join(", ")
                ));
            }
        }
        if !(1..=60).contains(&self.timeout_secs) {
            problems.push(format!("{at}webhooks[{}].timeout_secs: must be between 1 and 60", self.url));
        }
        problems
    }

    fn subscription(&self) -> Subscription {
        Subscription { url: self.url.clone(), events: self.events.clone() }
    }
}

impl BeforeSignupHookConfig {
    pub(super) fn problems(&self, at: &str) -> Vec<String> {
        let mut problems = Vec::new();
        if !is_http_url(&self.url) {
            problems.push(format!("{at}hooks.before_signup.url: {:?} is not an http(s) URL", self.url));
        }
        if !is_webhook_secret(&self.secret.0) {
            problems
                .push(format!("{at}hooks.before_signup.secret: must be whsec_ and base64 of 24 to 64 bytes"));
        }
        if !(100..=30_000).contains(&self.timeout_ms) {
            problems.push(format!("{at}hooks.before_signup.timeout_ms: must be between 100 and 30000"));
        }
        problems
    }
}

impl Config {
    /// Every app's and instance's signup rules, resolved level by level, and the breach check.
    pub fn screening_rules(&self) -> ScreeningRules {
        let global_hook = self.hooks.before_signup.as_ref();
        let mut rules = ScreeningRules {
            default: self.signup.rules(global_hook),
            breach_check: self.passwords.breach_check.as_ref().map(|b| BreachCheck {
                url: b.url.clone(),
                timeout: std::time::Duration::from_millis(b.timeout_ms),
                reject_on_failure: b.on_failure == FailurePolicy::Reject,
            }),
            ..Default::default()
        };
        for inst in &self.instances {
            let hook = inst.hooks.before_signup.as_ref().or(global_hook);
            let instance_level = inst.signup.over(&self.signup);
            rules.instances.insert(inst.name.clone(), instance_level.rules(hook));
            for app in &inst.apps {
                let app_rules = app.signup.over(&instance_level).rules(hook);
                rules.apps.insert((inst.name.clone(), app.id.clone()), app_rules);
            }
        }
        rules
    }

    /// Which endpoints want which lifecycle events.
    pub fn event_subscriptions(&self) -> Subscriptions {
        Subscriptions {
            global: self.webhooks.iter().map(EventWebhookConfig::subscription).collect(),
            instances: self
                .instances
                .iter()
                .filter(|i| !i.webhooks.is_empty())
                .map(|i| (i.name.clone(), i.webhooks.iter().map(EventWebhookConfig::subscription).collect()))
                .collect(),
        }
    }

    pub(super) fn screening_problems(&self) -> Vec<String> {
        let mut problems = self.signup.problems("");
        problems.extend(self.webhooks.iter().flat_map(|w| w.problems("")));
        problems.extend(self.hooks.before_signup.iter().flat_map(|h| h.problems("")));
        if let Some(b) = &self.passwords.breach_check {
            if !is_http_url(&b.url) {
                problems.push(format!("passwords.breach_check.url: {:?} is not an http(s) URL", b.url));
            }
            if !(100..=30_000).contains(&b.timeout_ms) {
                problems.push("passwords.breach_check.timeout_ms: must be between 100 and 30000".into());
            }
        }
        for inst in &self.instances {
            let at = format!("instances[{}].", inst.name);
            problems.extend(inst.signup.problems(&at));
            problems.extend(inst.hooks.before_signup.iter().flat_map(|h| h.problems(&at)));
            problems.extend(inst.webhooks.iter().flat_map(|w| w.problems(&at)));
            for app in &inst.apps {
                problems.extend(app.signup.problems(&format!("instances.apps[{}].", app.id)));
            }
        }
        problems
    }
}
