//! The sections of the configuration file that are not per instance.

use super::*;

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum MailTransportKind {
    /// One `.eml` per message under `{data_dir}/mail/`.
    File,
    Smtp,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct MailConfig {
    pub transport: MailTransportKind,
    pub from: String,
    /// `smtp://user:pass@host:587?tls=required` (STARTTLS), `smtps://…` (TLS), `smtp://host:25` (plain).
    pub smtp_url: Option<Secret>,
    /// Seconds before an SMTP conversation is abandoned (and retried later).
    pub timeout_secs: u64,
    /// PEM file of the CA (or CAs) that signed the SMTP server's certificate, trusted besides
    /// the system's roots and the public ones (a private CA).
    pub tls_ca_file: Option<PathBuf>,
}

impl Default for MailConfig {
    fn default() -> Self {
        Self {
            transport: MailTransportKind::File,
            from: "onramp <no-reply@localhost>".into(),
            smtp_url: None,
            timeout_secs: 15,
            tls_ca_file: None,
        }
    }
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum SmsTransportKind {
    /// One JSON document per message under `{data_dir}/sms/`.
    File,
    /// `POST` the same JSON to `http_url`.
    Http,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SmsConfig {
    pub transport: SmsTransportKind,
    /// The sender name or number.
    pub from: String,
    pub http_url: Option<String>,
    /// Sent as the `Authorization` header to the provider.
    pub http_authorization: Option<Secret>,
    pub timeout_secs: u64,
}

impl Default for SmsConfig {
    fn default() -> Self {
        Self {
            transport: SmsTransportKind::File,
            from: "onramp".into(),
            http_url: None,
            http_authorization: None,
            timeout_secs: 10,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct PasswordConfig {
    pub min_length: usize,
    pub max_length: usize,
    /// Refuse passwords found in a breach corpus (off unless set).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub breach_check: Option<BreachCheckConfig>,
}

impl Default for PasswordConfig {
    fn default() -> Self {
        Self { min_length: 8, max_length: 1024, breach_check: None }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct HashingConfig {
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
    /// 0: one per core.
    pub threads: usize,
    /// Jobs that may wait before requests get 503.
    pub queue: usize,
}

impl Default for HashingConfig {
    fn default() -> Self {
        Self { memory_kib: 19_456, iterations: 2, parallelism: 1, threads: 0, queue: 64 }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct TokenConfig {
    pub activation_ttl_hours: i64,
    /// The least time between two activation mails to one pending address.
    pub resend_interval_secs: i64,
    pub session_ttl_minutes: i64,
    /// Emailed confirmation and password-reset codes.
    pub code_ttl_hours: i64,
}

impl Default for TokenConfig {
    fn default() -> Self {
        Self {
            activation_ttl_hours: 24,
            resend_interval_secs: 60,
            session_ttl_minutes: 60,
            code_ttl_hours: 24,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimitConfig {
    pub enabled: bool,
    pub signup_per_client_per_10min: u32,
    pub signup_per_email_per_hour: u32,
    pub signup_per_instance_per_minute: u32,
    pub login_per_client_per_10min: u32,
    pub login_per_identifier_per_10min: u32,
    pub fast_track_per_client_per_hour: u32,
    pub fast_track_per_email_domain_per_hour: u32,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            signup_per_client_per_10min: 30,
            signup_per_email_per_hour: 5,
            signup_per_instance_per_minute: 6000,
            login_per_client_per_10min: 60,
            login_per_identifier_per_10min: 10,
            fast_track_per_client_per_hour: 10,
            fast_track_per_email_domain_per_hour: 100,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// A client must send a request's complete headers within this long, counted from the
    /// connection's start or the end of the previous response: slow and idle connections close.
    pub header_timeout_secs: u64,
    /// Open connections at most; one more is closed at once.
    pub max_connections: usize,
    /// On SIGTERM: how long requests in flight may take to finish.
    pub shutdown_grace_secs: u64,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self { header_timeout_secs: 10, max_connections: 1024, shutdown_grace_secs: 20 }
    }
}

/// `/metrics` is public unless one of these says otherwise.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// Scrapers must send `Authorization: Bearer {token}`.
    pub token: Option<Secret>,
    /// Serve `/metrics` on this address only (e.g. `127.0.0.1:9100`), not on `listen`.
    pub listen: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct OutboxConfig {
    /// Attempts before a message is dead-lettered.
    pub max_attempts: u32,
    /// First retry delay; doubles each attempt, capped at an hour.
    pub retry_base_secs: i64,
    /// How often the worker looks for due messages when nothing wakes it.
    pub poll_interval_ms: u64,
    /// How long a claimed message stays with its worker; a crashed worker's messages are
    /// retried after this. Batches are sized to finish within it at the mail timeout.
    pub lease_secs: u64,
}

impl Default for OutboxConfig {
    fn default() -> Self {
        Self { max_attempts: 10, retry_base_secs: 5, poll_interval_ms: 1000, lease_secs: 60 }
    }
}

/// The audit log.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AuditConfig {
    /// Entries older than this are deleted by the worker's housekeeping; 0 keeps them all.
    pub retention_days: u32,
}

impl Default for AuditConfig {
    fn default() -> Self {
        // Thirteen months: a year of history, whatever day of the month one looks.
        Self { retention_days: 400 }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseConfig {
    pub max_connections: u32,
    pub acquire_timeout_secs: u64,
    /// PostgreSQL: statements running longer are cancelled (and the request gets 503).
    pub statement_timeout_ms: u64,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self { max_connections: 8, acquire_timeout_secs: 5, statement_timeout_ms: 10_000 }
    }
}

/// DreamFactory FastTrack (seed 000): `POST /fast-track`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct FastTrackConfig {
    /// Off by default: `/fast-track` answers 404.
    pub enabled: bool,
    /// How long the `fastTrackGuid` of a new instance may be exchanged for a session.
    pub login_ttl_secs: i64,
    /// Web origins whose pages may start a FastTrack: an HTML form posted from them (checked
    /// against `Origin`, or `Referer` when a browser sends no `Origin`), or `fetch` with CORS.
    pub allowed_origins: Vec<String>,
    /// Where a failed form post is sent back to (`303`, with `?error={code}`); unset: an HTML
    /// error page.
    pub form_url: Option<String>,
    /// A FastTrack's dashboard user stays `unconfirmed` until the link of the mail sent to its
    /// address is used; after this many hours unconfirmed, the address is released (the
    /// instance disabled, the dashboard user deleted) so its owner may FastTrack.
    pub confirm_within_hours: i64,
    /// Instance names FastTrack never gives, besides the built-in reserved ones (`admin`,
    /// `billing`, `paypal`, `security`, …): a FastTrack from `acme@…` gets `acme-2`.
    pub reserved_names: Vec<String>,
}

impl Default for FastTrackConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            login_ttl_secs: 300,
            allowed_origins: Vec::new(),
            form_url: None,
            confirm_within_hours: 72,
            reserved_names: Vec::new(),
        }
    }
}
