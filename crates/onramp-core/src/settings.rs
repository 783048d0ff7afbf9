//! The core's settings: policies, lifetimes and rate limits, as the configuration sets them.

use crate::password::PasswordPolicy;
use time::Duration;

/// A fixed-window limit: at most `max` hits per `window`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    pub max: u32,
    pub window: Duration,
}

impl Limit {
    pub const fn per_minutes(max: u32, minutes: i64) -> Self {
        Self { max, window: Duration::minutes(minutes) }
    }
}

#[derive(Debug, Clone)]
pub struct RateLimits {
    pub enabled: bool,
    pub signup_per_client: Limit,
    pub signup_per_email: Limit,
    pub signup_per_instance: Limit,
    pub login_per_client: Limit,
    pub login_per_identifier: Limit,
    pub fast_track_per_client: Limit,
    pub fast_track_per_email_domain: Limit,
}

impl Default for RateLimits {
    fn default() -> Self {
        Self {
            enabled: true,
            signup_per_client: Limit::per_minutes(30, 10),
            signup_per_email: Limit::per_minutes(5, 60),
            signup_per_instance: Limit::per_minutes(6000, 1),
            login_per_client: Limit::per_minutes(60, 10),
            login_per_identifier: Limit::per_minutes(10, 10),
            fast_track_per_client: Limit::per_minutes(10, 60),
            fast_track_per_email_domain: Limit::per_minutes(100, 60),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub password: PasswordPolicy,
    pub activation_ttl: Duration,
    /// The least time between two activation mails to one pending address.
    pub resend_interval: Duration,
    pub session_ttl: Duration,
    /// How long an emailed confirmation or reset code lives.
    pub code_ttl: Duration,
    /// How long a `fastTrackGuid` may be exchanged for a session.
    pub fast_track_login_ttl: Duration,
    /// How long a FastTrack's address may stay unconfirmed before it is released.
    pub fast_track_confirm_within: Duration,
    /// Names FastTrack never gives an instance, besides `instance_name::RESERVED`.
    pub fast_track_reserved_names: Vec<String>,
    /// Origin of links that point at onramp itself, e.g. `http://localhost:8080`.
    pub public_url: String,
    /// Right-hand side of generated Message-IDs.
    pub message_id_domain: String,
    pub rate_limits: RateLimits,
    /// What each app asks of a signup (domains, CAPTCHA, hook) and the breached-password check.
    pub screening: crate::screening::ScreeningRules,
    /// Which webhook endpoints want which lifecycle events.
    pub events: crate::events::Subscriptions,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            password: PasswordPolicy::default(),
            activation_ttl: Duration::hours(24),
            resend_interval: Duration::seconds(60),
            session_ttl: Duration::hours(1),
            fast_track_login_ttl: Duration::minutes(5),
            fast_track_confirm_within: Duration::hours(72),
            fast_track_reserved_names: Vec::new(),
            code_ttl: Duration::hours(24),
            public_url: "http://localhost:8080".into(),
            message_id_domain: "localhost".into(),
            rate_limits: RateLimits::default(),
            screening: Default::default(),
            events: Default::default(),
        }
    }
}
