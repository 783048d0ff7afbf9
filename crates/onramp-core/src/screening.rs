//! Screening: what every signup surface asks before it writes anything or hashes a password.
//! An app's (or instance's) rules refuse addresses of denied, not-allowed or disposable
//! domains, a missing or failed CAPTCHA, a password found in a breach corpus, and whatever the
//! operator's before-signup hook denies; the hook may also hand back metadata to keep on the
//! user. The calls that leave the process (siteverify, the password range API, the hook) go
//! through the `Remote` port, which the binary implements over HTTP.

use crate::email::EmailAddress;
use crate::error::{CoreError, FieldError};
use crate::model::Instance;
use crate::password::Password;
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, Instant};

/// The CAPTCHA services onramp verifies tokens of, each with its siteverify API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CaptchaProvider {
    Turnstile,
    Hcaptcha,
    Recaptcha,
}

impl CaptchaProvider {
    /// The provider's own siteverify endpoint.
    pub fn verify_url(self) -> &'static str {
        match self {
            Self::Turnstile => "https://challenges.cloudflare.com/turnstile/v0/siteverify",
            Self::Hcaptcha => "https://api.hcaptcha.com/siteverify",
            Self::Recaptcha => "https://www.google.com/recaptcha/api/siteverify",
        }
    }

    /// The form field the provider's widget fills in.
    pub fn form_field(self) -> &'static str {
        match self {
            Self::Turnstile => "cf-turnstile-response",
            Self::Hcaptcha => "h-captcha-response",
            Self::Recaptcha => "g-recaptcha-response",
        }
    }

    /// The widget's script and the class of the element it renders into.
    pub fn widget(self) -> (&'static str, &'static str) {
        match self {
            Self::Turnstile => ("https://challenges.cloudflare.com/turnstile/v0/api.js", "cf-turnstile"),
            Self::Hcaptcha => ("https://js.hcaptcha.com/1/api.js", "h-captcha"),
            Self::Recaptcha => ("https://www.google.com/recaptcha/api.js", "g-recaptcha"),
        }
    }
}

/// An app's CAPTCHA: the provider, the site key the widget shows, the secret siteverify takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Captcha {
    pub provider: CaptchaProvider,
    pub site_key: Option<String>,
    pub secret: String,
    pub verify_url: String,
}

/// The operator's before-signup hook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignupHook {
    pub url: String,
    /// `whsec_…`, as Standard Webhooks has it.
    pub secret: String,
    pub timeout: Duration,
    /// When the hook cannot be asked (down, slow, an answer that is not one): refuse the
    /// signup (`true`) or let it through.
    pub reject_on_failure: bool,
}

/// The breached-password check (the k-anonymity range protocol of Pwned Passwords).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BreachCheck {
    /// The range API's base, e.g. `https://api.pwnedpasswords.com/range/`.
    pub url: String,
    pub timeout: Duration,
    pub reject_on_failure: bool,
}

/// What one app (or instance) asks of a signup.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SignupRules {
    pub block_disposable_email: bool,
    /// When not empty, only addresses of these domains (or their subdomains) may sign up.
    pub email_domains_allow: Vec<String>,
    /// Addresses of these domains (or their subdomains) may not.
    pub email_domains_deny: Vec<String>,
    pub captcha: Option<Captcha>,
    pub before_signup: Option<SignupHook>,
    /// Only addresses holding a live invitation (to this app) may sign up.
    pub invite_only: bool,
}

/// Every app's and instance's rules, as the configuration sets them; an instance made at run
/// time (FastTrack) has the defaults.
#[derive(Debug, Clone, Default)]
pub struct ScreeningRules {
    pub default: SignupRules,
    pub instances: HashMap<String, SignupRules>,
    /// By (instance, app id).
    pub apps: HashMap<(String, String), SignupRules>,
    pub breach_check: Option<BreachCheck>,
}

impl ScreeningRules {
    /// The rules of `app` in `instance`: the app's own, else the instance's, else the defaults.
    pub fn rules(&self, instance: &str, app: Option<&str>) -> &SignupRules {
        app.and_then(|app| self.apps.get(&(instance.to_owned(), app.to_owned())))
            .or_else(|| self.instances.get(instance))
            .unwrap_or(&self.default)
    }
}

/// What the before-signup hook answered.
#[derive(Debug, Clone, PartialEq)]
pub enum HookAnswer {
    /// Go on; keep `metadata` (a JSON object) on the user.
    Allow { metadata: Option<serde_json::Value> },
    /// Refuse, with the hook's own code and message.
    Deny { code: String, message: String },
}

/// The calls screening makes outside the process.
#[async_trait]
pub trait Remote: Send + Sync {
    /// Ask the CAPTCHA provider whether `token` is good: `Ok(false)` for a refused token, an
    /// error when the provider cannot be asked.
    async fn verify_captcha(
        &self,
        captcha: &Captcha,
        token: &str,
        client: Option<&str>,
    ) -> Result<bool, String>;
    /// The range API's answer for a 5-character SHA-1 prefix: lines of `SUFFIX:COUNT`.
    async fn password_range(&self, check: &BreachCheck, prefix: &str) -> Result<String, String>;
    /// Call the before-signup hook with `body` (signed by the implementation).
    async fn before_signup(&self, hook: &SignupHook, body: &serde_json::Value) -> Result<HookAnswer, String>;
}

/// No outside calls can be made: every check that needs one fails (and its `on_failure`
/// decides). For tools that never screen signups.
pub struct NoRemote;

#[async_trait]
impl Remote for NoRemote {
    async fn verify_captcha(&self, _: &Captcha, _: &str, _: Option<&str>) -> Result<bool, String> {
        Err("no outside calls are configured".into())
    }

    async fn password_range(&self, _: &BreachCheck, _: &str) -> Result<String, String> {
        Err("no outside calls are configured".into())
    }

    async fn before_signup(&self, _: &SignupHook, _: &serde_json::Value) -> Result<HookAnswer, String> {
        Err("no outside calls are configured".into())
    }
}

/// A signup as a surface hands it over, after its own validation and before any write.
#[derive(Debug, Clone)]
pub struct Applicant<'a> {
    /// `v1`, `dreamfactory`, `fasteditor`, `dialogportal` or `fast_track`.
    pub surface: &'static str,
    pub app_id: Option<&'a str>,
    /// None: the surface's signup has no address (a dialogportal contract without one).
    pub email: Option<&'a EmailAddress>,
    /// What the surface calls its email and password fields (errors name them).
    pub email_field: &'a str,
    pub password: Option<&'a Password>,
    pub password_field: &'a str,
    pub name: Option<&'a str>,
    pub first_name: Option<&'a str>,
    pub last_name: Option<&'a str>,
    pub language: Option<&'a str>,
    pub client: Option<&'a str>,
    /// The surface's other fields (never a password).
    pub fields: serde_json::Value,
    pub captcha_token: Option<&'a str>,
}

/// A signup screening let through, with what the hook asked to keep.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Admitted {
    pub metadata: Option<serde_json::Value>,
}

/// Prefixes whose ranges are kept, and for how long.
const RANGE_CACHE_ENTRIES: usize = 256;
const RANGE_CACHE_TTL: Duration = Duration::from_secs(3600);
/// The most a hook's metadata may weigh, serialised.
const MAX_METADATA_BYTES: usize = 16 * 1024;

/// The disposable-address domains `mailchecker` tracks (from its maintained list), as a set.
static DISPOSABLE: LazyLock<HashSet<&'static str>> =
    LazyLock::new(|| mailchecker::blacklist().into_iter().collect());

/// `domain` or one of its parent domains is in `list`.
fn domain_in<'a>(domain: &str, list: impl IntoIterator<Item = &'a str>) -> bool {
    let list: Vec<&str> = list.into_iter().collect();
    parents(domain).any(|d| list.iter().any(|l| l.eq_ignore_ascii_case(d)))
}

/// `a.b.example.com`, `b.example.com`, `example.com`, `com`.
fn parents(domain: &str) -> impl Iterator<Item = &str> {
    std::iter::successors(Some(domain), |d| d.split_once('.').map(|(_, rest)| rest))
}

/// Whether `domain` (or a parent) is a known disposable-address domain.
pub fn is_disposable(domain: &str) -> bool {
    let domain = domain.to_ascii_lowercase();
    parents(&domain).any(|d| DISPOSABLE.contains(d))
}

/// The suffixes one range lists as breached.
type Range = Arc<HashSet<String>>;

/// The screening every signup surface runs.
pub struct Screening {
    pub rules: ScreeningRules,
    remote: Arc<dyn Remote>,
    invitations: Arc<dyn crate::ports::Invitations>,
    clock: Arc<dyn crate::clock::Clock>,
    /// Ranges asked lately, by prefix: the breached suffixes, and when they were asked.
    ranges: Mutex<HashMap<String, (Range, Instant)>>,
}

impl Screening {
    pub fn new(
        rules: ScreeningRules,
        remote: Arc<dyn Remote>,
        invitations: Arc<dyn crate::ports::Invitations>,
        clock: Arc<dyn crate::clock::Clock>,
    ) -> Self {
        Self { rules, remote, invitations, clock, ranges: Mutex::new(HashMap::new()) }
    }

    /// The breached-password check alone (an invitation's password: the invitation stands for
    /// the rest).
    pub async fn check_password(&self, password: &Password, field: &str) -> Result<(), CoreError> {
        match &self.rules.breach_check {
            Some(check) => self.check_breach(check, password, field).await,
            None => Ok(()),
        }
    }

    /// Screen `applicant` for `instance`: every local rule first (its errors together), then
    /// the CAPTCHA, the breach check and the hook, each only when the ones before passed.
    pub async fn screen(
        &self,
        instance: &Instance,
        applicant: &Applicant<'_>,
    ) -> Result<Admitted, CoreError> {
        let rules = self.rules.rules(&instance.name, applicant.app_id);
        if rules.invite_only {
            let Some(email) = applicant.email else { return Err(CoreError::InvitationRequired) };
            let now = self.clock.now();
            let invitations = &self.invitations;
            if !invitations.has_live_invitation(instance.id, email.canonical(), applicant.app_id, now).await?
            {
                return Err(CoreError::InvitationRequired);
            }
        }
        self.check_domain(rules, applicant)?;
        if let Some(captcha) = &rules.captcha {
            self.check_captcha(captcha, applicant).await?;
        }
        if let (Some(check), Some(password)) = (&self.rules.breach_check, applicant.password) {
            self.check_breach(check, password, applicant.password_field).await?;
        }
        match &rules.before_signup {
            Some(hook) => self.ask_hook(hook, instance, applicant).await,
            None => Ok(Admitted::default()),
        }
    }

    fn check_domain(&self, rules: &SignupRules, applicant: &Applicant<'_>) -> Result<(), CoreError> {
        let Some(email) = applicant.email else { return Ok(()) };
        let domain = email.canonical().rsplit_once('@').map(|(_, d)| d).unwrap_or_default();
        let field = applicant.email_field;
        if domain_in(domain, rules.email_domains_deny.iter().map(String::as_str))
            || (!rules.email_domains_allow.is_empty()
                && !domain_in(domain, rules.email_domains_allow.iter().map(String::as_str)))
        {
            return Err(CoreError::field(
                field,
                "email_domain_not_allowed",
                "is of a domain that may not sign up",
            ));
        }
        if rules.block_disposable_email && is_disposable(domain) {
            return Err(CoreError::field(
                field,
                "email_disposable",
                "is a disposable address; use a lasting one",
            ));
        }
        Ok(())
    }

    async fn check_captcha(&self, captcha: &Captcha, applicant: &Applicant<'_>) -> Result<(), CoreError> {
        let Some(token) = applicant.captcha_token.map(str::trim).filter(|t| !t.is_empty()) else {
            return Err(CoreError::field("captcha_token", "captcha_required", "solve the CAPTCHA first"));
        };
        if token.len() > 4096 {
            return Err(CoreError::field("captcha_token", "captcha_failed", "was not accepted; try again"));
        }
        match self.remote.verify_captcha(captcha, token, applicant.client).await {
            Ok(true) => Ok(()),
            Ok(false) => {
                Err(CoreError::field("captcha_token", "captcha_failed", "was not accepted; try again"))
            }
            Err(e) => Err(CoreError::Unavailable(format!("CAPTCHA siteverify: {e}"))),
        }
    }

    async fn check_breach(
        &self,
        check: &BreachCheck,
        password: &Password,
        field: &str,
    ) -> Result<(), CoreError> {
        use sha1::Digest;
        let digest = sha1::Sha1::digest(password.expose().as_bytes());
        let hex: String = digest.iter().map(|b| format!("{b:02X}")).collect();
        let (prefix, suffix) = hex.split_at(5);
        let range = match self.cached_range(prefix) {
            Some(range) => range,
            None => match self.remote.password_range(check, prefix).await {
                Ok(body) => self.keep_range(prefix, &body),
                Err(e) if check.reject_on_failure => {
                    return Err(CoreError::Unavailable(format!("breached-password check: {e}")));
                }
                Err(e) => {
                    tracing::warn!(error = %e, "breached-password check unavailable; the password was let through");
                    return Ok(());
                }
            },
        };
        if range.contains(suffix) {
            return Err(CoreError::Validation(vec![FieldError::new(
                field,
                "password_too_common",
                "appears in a known data breach; choose another",
            )]));
        }
        Ok(())
    }

    fn cached_range(&self, prefix: &str) -> Option<Range> {
        let ranges = self.ranges.lock().unwrap_or_else(|e| e.into_inner());
        ranges.get(prefix).filter(|(_, at)| at.elapsed() < RANGE_CACHE_TTL).map(|(r, _)| r.clone())
    }

    /// Keep the suffixes the range lists with a count (padding lines have count 0).
    fn keep_range(&self, prefix: &str, body: &str) -> Range {
        let suffixes: HashSet<String> = body
            .lines()
            .filter_map(|line| line.trim().split_once(':'))
            .filter(|(_, count)| count.trim().parse::<u64>().is_ok_and(|n| n > 0))
            .map(|(suffix, _)| suffix.trim().to_ascii_uppercase())
            .collect();
        let range = Arc::new(suffixes);
        let mut ranges = self.ranges.lock().unwrap_or_else(|e| e.into_inner());
        if ranges.len() >= RANGE_CACHE_ENTRIES {
            ranges.retain(|_, (_, at)| at.elapsed() < RANGE_CACHE_TTL);
            if ranges.len() >= RANGE_CACHE_ENTRIES {
                ranges.clear();
            }
        }
        ranges.insert(prefix.to_owned(), (range.clone(), Instant::now()));
        range
    }

    async fn ask_hook(
        &self,
        hook: &SignupHook,
        instance: &Instance,
        applicant: &Applicant<'_>,
    ) -> Result<Admitted, CoreError> {
        let body = serde_json::json!({
            "surface": applicant.surface,
            "instance": instance.name,
            "app_id": applicant.app_id,
            "email": applicant.email.map(EmailAddress::as_entered),
            "name": applicant.name,
            "first_name": applicant.first_name,
            "last_name": applicant.last_name,
            "language": applicant.language,
            "client_address": applicant.client,
            "fields": applicant.fields,
        });
        let failed = |why: String| {
            if hook.reject_on_failure {
                Err(CoreError::Unavailable(format!("before-signup hook: {why}")))
            } else {
                tracing::warn!(error = %why, "before-signup hook failed; the signup was let through");
                Ok(Admitted::default())
            }
        };
        match self.remote.before_signup(hook, &body).await {
            Ok(HookAnswer::Allow { metadata }) => match metadata {
                Some(m) if !m.is_object() => failed("metadata is not a JSON object".into()),
                Some(m) if m.to_string().len() > MAX_METADATA_BYTES => {
                    failed(format!("metadata over {MAX_METADATA_BYTES} bytes"))
                }
                metadata => Ok(Admitted { metadata }),
            },
            Ok(HookAnswer::Deny { code, message }) => {
                Err(CoreError::SignupDenied { code: denial_code(&code), message: denial_message(&message) })
            }
            Err(e) => failed(e),
        }
    }
}

/// The hook's code as clients get it: `[a-z0-9_.]`, at most 64, else `signup_denied`.
fn denial_code(code: &str) -> String {
    let ok = !code.is_empty()
        && code.len() <= 64
        && code.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '.');
    if ok { code.to_owned() } else { "signup_denied".into() }
}

/// The hook's message as clients get it: printable, at most 200 characters, else a default.
fn denial_message(message: &str) -> String {
    let message = message.trim();
    if message.is_empty() || message.chars().count() > 200 || message.chars().any(char::is_control) {
        "This signup is not allowed.".into()
    } else {
        message.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disposable_domains_and_their_subdomains_are_known() {
        assert!(is_disposable("mailinator.com"));
        assert!(is_disposable("x.Mailinator.com"));
        assert!(!is_disposable("example.com"));
        assert!(!is_disposable("gmail.com"));
    }

    #[test]
    fn a_domain_matches_itself_and_its_subdomains_only() {
        assert!(domain_in("corp.example.com", ["example.com"]));
        assert!(domain_in("example.com", ["EXAMPLE.com"]));
        assert!(!domain_in("badexample.com", ["example.com"]));
    }

    #[test]
    fn a_hook_code_and_message_reach_clients_only_when_tidy() {
        assert_eq!(denial_code("blocked_domain"), "blocked_domain");
        assert_eq!(denial_code("Blocked Domain"), "signup_denied");
        assert_eq!(denial_message("  No thanks. "), "No thanks.");
        assert_eq!(denial_message("a\u{7}b"), "This signup is not allowed.");
    }
}
