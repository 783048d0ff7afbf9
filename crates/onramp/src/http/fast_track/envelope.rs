//! The DreamFactory Enterprise console envelope that FastTrack answers in (seed 000):
//! `success`, `status_code`, `response` or `error`, and `request{elapsed, id, request-uri,
//! signature, start, verb, version}`. `id` is a 40-hex SHA-1 of the request's start time, host,
//! client address and a random nonce (so two requests in one second differ); `signature` is `base64(HMAC-SHA256(key = id, message = id))` — the
//! formula both of the seed's example envelopes verify with.

use base64::Engine;
use hmac::{Hmac, Mac};
use serde::Serialize;
use sha1::{Digest, Sha1};
use sha2::Sha256;

/// `request.id`: SHA-1 over start time, host, client address and a per-request nonce, hex.
pub fn request_id(start: &str, host: &str, client: &str, nonce: &str) -> String {
    let digest = Sha1::digest(format!("{start}{host}{client}{nonce}").as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// `request.signature`: base64 of HMAC-SHA256 keyed with the id, over the id.
pub fn signature(id: &str) -> String {
    let mut mac = match Hmac::<Sha256>::new_from_slice(id.as_bytes()) {
        Ok(mac) => mac,
        // HMAC takes keys of any length; this arm is never reached.
        Err(_) => return String::new(),
    };
    mac.update(id.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// The `request` block of every console envelope.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct RequestInfo {
    /// Seconds.
    pub elapsed: f64,
    pub id: String,
    #[serde(rename = "request-uri")]
    pub request_uri: String,
    pub signature: String,
    /// ISO 8601 with offset.
    pub start: String,
    pub verb: String,
    pub version: &'static str,
}

impl RequestInfo {
    pub fn new(id: String, request_uri: &str, verb: &str, start: &str, elapsed: f64) -> Self {
        Self {
            elapsed: (elapsed * 10_000.0).round() / 10_000.0,
            signature: signature(&id),
            id,
            request_uri: request_uri.into(),
            start: start.into(),
            verb: verb.into(),
            version: "2.0",
        }
    }
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ErrorInfo {
    pub code: u16,
    pub message: String,
}

/// A console envelope: `response` on success, `error` (with `response: null`) on failure.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Envelope<T: Serialize> {
    pub success: bool,
    pub status_code: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorInfo>,
    pub response: Option<T>,
    pub request: RequestInfo,
}

impl<T: Serialize> Envelope<T> {
    pub fn ok(status_code: u16, response: T, request: RequestInfo) -> Self {
        Self { success: true, status_code, error: None, response: Some(response), request }
    }

    pub fn error(status_code: u16, message: &str, request: RequestInfo) -> Self {
        Self {
            success: false,
            status_code,
            error: Some(ErrorInfo { code: status_code, message: message.into() }),
            response: None,
            request,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_seed_envelopes_verify_with_the_formula() {
        // Seed 000's success and error examples.
        assert_eq!(
            signature("102fb7bff406b58eca8f8499f461f64204f62ba1"),
            "oofbIbnrWJq04/+4/K/q9eyDzB71UxZ19huyaDVfbMA="
        );
        assert_eq!(
            signature("664d18cd422c5968f603f8fe8f928524220b5855"),
            "noERPor0Lg76mXDWJ1gsmisueBL5psl6fszpsuqE98A="
        );
    }

    #[test]
    fn the_request_id_is_a_40_hex_sha1_that_depends_on_each_input() {
        let id = request_id("2016-02-25T16:32:08-05:00", "dfe.example.com", "10.0.0.1", "n1");
        assert_eq!(id.len(), 40);
        assert!(id.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(id, request_id("2016-02-25T16:32:09-05:00", "dfe.example.com", "10.0.0.1", "n1"));
        assert_ne!(id, request_id("2016-02-25T16:32:08-05:00", "other.example.com", "10.0.0.1", "n1"));
        assert_ne!(id, request_id("2016-02-25T16:32:08-05:00", "dfe.example.com", "10.0.0.2", "n1"));
        assert_ne!(id, request_id("2016-02-25T16:32:08-05:00", "dfe.example.com", "10.0.0.1", "n2"));
    }

    #[test]
    fn envelopes_have_the_seeds_shape() {
        let id = request_id("2016-02-25T16:21:25-05:00", "h", "c", "n");
        let req = RequestInfo::new(id, "/fast-track", "POST", "2016-02-25T16:21:25-05:00", 0.11094);
        let err =
            serde_json::to_value(Envelope::<()>::error(400, "I am an error message", req.clone())).unwrap();
        assert_eq!(err["success"], false);
        assert_eq!(err["status_code"], 400);
        assert_eq!(err["error"]["code"], 400);
        assert!(err["response"].is_null());
        assert_eq!(err["request"]["request-uri"], "/fast-track");
        assert_eq!(err["request"]["version"], "2.0");
        assert_eq!(err["request"]["elapsed"], 0.1109);
        assert_eq!(err["request"]["signature"], signature(err["request"]["id"].as_str().unwrap()));
        let ok =
            serde_json::to_value(Envelope::ok(200, serde_json::json!({"instance-id": "joe"}), req)).unwrap();
        assert_eq!(ok["success"], true);
        assert!(ok.get("error").is_none());
        assert_eq!(ok["response"]["instance-id"], "joe");
    }
}
