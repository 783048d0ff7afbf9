//! Prometheus metrics: requests by route and status, signups, activations, logins, FastTracks, outbox
//! deliveries and failures; outbox depth and hash-queue depth are read at scrape time.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub method: String,
    pub route: String,
    pub status: u16,
}

pub struct Metrics {
    registry: Registry,
    pub requests: Family<RequestLabels, Counter>,
    pub signups: Counter,
    pub activations: Counter,
    pub logins: Counter,
    pub fast_tracks: Counter,
    /// FastTrack instances disabled because their address was released.
    pub fast_tracks_released: Counter,
    pub outbox_delivered: Counter,
    pub outbox_failures: Counter,
    /// Messages this node could not open (sealed under another key), left for another node.
    pub outbox_unopenable: Counter,
    /// Sends that failed in the TLS handshake: a configuration error (CA, name, protocol).
    pub outbox_tls_failures: Counter,
    pub outbox_pending: Gauge,
    pub outbox_dead: Gauge,
    pub hash_queue_depth: Gauge,
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("onramp");
        let requests = Family::<RequestLabels, Counter>::default();
        let m = Self {
            requests: requests.clone(),
            signups: Counter::default(),
            activations: Counter::default(),
            logins: Counter::default(),
            fast_tracks: Counter::default(),
            fast_tracks_released: Counter::default(),
            outbox_delivered: Counter::default(),
            outbox_failures: Counter::default(),
            outbox_unopenable: Counter::default(),
            outbox_tls_failures: Counter::default(),
            outbox_pending: Gauge::default(),
            outbox_dead: Gauge::default(),
            hash_queue_depth: Gauge::default(),
            registry: Registry::default(),
        };
        registry.register("http_requests", "HTTP requests by route and status", requests);
        registry.register("signups", "Signups accepted", m.signups.clone());
        registry.register("activations", "Signups activated", m.activations.clone());
        registry.register("logins", "Successful logins", m.logins.clone());
        registry.register("fast_tracks", "Instances provisioned by FastTrack", m.fast_tracks.clone());
        registry.register(
            "fast_tracks_released",
            "FastTrack instances disabled because the owner of their address said it was not them, or never confirmed it",
            m.fast_tracks_released.clone(),
        );
        registry.register("outbox_delivered", "Outbox messages delivered", m.outbox_delivered.clone());
        registry.register(
            "outbox_failures",
            "Outbox delivery attempts that failed",
            m.outbox_failures.clone(),
        );
        registry.register(
            "outbox_unopenable",
            "Outbox messages this node could not open (another secret key), left for another node",
            m.outbox_unopenable.clone(),
        );
        registry.register(
            "outbox_tls_failures",
            "Outbox sends that failed in the TLS handshake with the mail server (a configuration error)",
            m.outbox_tls_failures.clone(),
        );
        registry.register("outbox_pending", "Outbox messages waiting for delivery", m.outbox_pending.clone());
        registry.register("outbox_dead", "Outbox messages dead-lettered", m.outbox_dead.clone());
        registry.register(
            "hash_queue_depth",
            "Password hashing jobs queued or running",
            m.hash_queue_depth.clone(),
        );
        Self { registry, ..m }
    }

    pub fn encode(&self) -> Result<String, std::fmt::Error> {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)?;
        Ok(out)
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
