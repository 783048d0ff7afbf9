//! What no surface can store, refused at the door in the surface's own format before any
//! handler runs: a NUL or other control character in the path (404: no such resource can
//! exist), NUL in the query or in any string or key of a JSON or form body (400: PostgreSQL
//! cannot store it, and no name needs it), and a request with more than one `Host` (400: which
//! instance it addresses would be ambiguous).

use super::BODY_LIMIT;
use super::browser::Surface;
use crate::http::AppState;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{StatusCode, header, request::Parts};
use axum::middleware::Next;
use axum::response::Response;
use futures_util::StreamExt;
use http_body_util::BodyExt;

const INVALID: &str = "invalid_characters";
const INVALID_MESSAGE: &str = "Text must not contain NUL characters.";

pub async fn refuse_unstorable(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let (parts, body) = request.into_parts();
    let surface = Surface::of(parts.uri.path(), &state);
    let refuse = |status, code, message| surface.refuse(&state, &parts, status, code, message);
    if parts.headers.get_all(header::HOST).iter().count() > 1 {
        return refuse(StatusCode::BAD_REQUEST, "ambiguous_host", "Send exactly one Host header.");
    }
    let decoded = percent_decode;
    if decoded(parts.uri.path()).iter().any(|b| b.is_ascii_control()) {
        return refuse(StatusCode::NOT_FOUND, "not_found", "Not found.");
    }
    if parts.uri.query().is_some_and(|q| decoded(q).contains(&0)) {
        return refuse(StatusCode::BAD_REQUEST, INVALID, INVALID_MESSAGE);
    }
    let Some(kind) = body_kind(&parts) else {
        return next.run(Request::from_parts(parts, body)).await;
    };
    let bytes = match buffer(body).await {
        Buffered::Whole(bytes) => bytes,
        // Over the limit: the handler sees it all and refuses it with its own 413.
        Buffered::TooLarge(body) => return next.run(Request::from_parts(parts, body)).await,
        Buffered::Failed => {
            return refuse(StatusCode::BAD_REQUEST, "unreadable_body", "The request body could not be read.");
        }
    };
    let has_nul = match kind {
        BodyKind::Json => serde_json::from_slice::<serde_json::Value>(&bytes).is_ok_and(|v| json_has_nul(&v)),
        BodyKind::Form => {
            url::form_urlencoded::parse(&bytes).any(|(k, v)| k.contains('\0') || v.contains('\0'))
        }
    };
    if has_nul {
        return refuse(StatusCode::BAD_REQUEST, INVALID, INVALID_MESSAGE);
    }
    next.run(Request::from_parts(parts, Body::from(bytes))).await
}

enum BodyKind {
    Json,
    Form,
}

fn body_kind(parts: &Parts) -> Option<BodyKind> {
    let essence = parts
        .headers
        .get(header::CONTENT_TYPE)?
        .to_str()
        .ok()?
        .split(';')
        .next()?
        .trim()
        .to_ascii_lowercase();
    if essence == "application/json"
        || essence.strip_prefix("application/").is_some_and(|s| s.ends_with("+json"))
    {
        Some(BodyKind::Json)
    } else if essence == "application/x-www-form-urlencoded" {
        Some(BodyKind::Form)
    } else {
        None
    }
}

enum Buffered {
    Whole(Bytes),
    TooLarge(Body),
    Failed,
}

/// Read the body up to [`BODY_LIMIT`]; past it, hand back a body that replays what was read
/// followed by the rest.
async fn buffer(mut body: Body) -> Buffered {
    let mut read = Vec::new();
    while let Some(frame) = body.frame().await {
        let Ok(frame) = frame else { return Buffered::Failed };
        if let Ok(data) = frame.into_data() {
            read.extend_from_slice(&data);
            if read.len() > BODY_LIMIT {
                let head = futures_util::stream::once(async move { Ok::<_, axum::Error>(Bytes::from(read)) });
                return Buffered::TooLarge(Body::from_stream(head.chain(body.into_data_stream())));
            }
        }
    }
    Buffered::Whole(Bytes::from(read))
}

fn json_has_nul(v: &serde_json::Value) -> bool {
    use serde_json::Value;
    match v {
        Value::String(s) => s.contains('\0'),
        Value::Array(items) => items.iter().any(json_has_nul),
        Value::Object(map) => map.iter().any(|(k, v)| k.contains('\0') || json_has_nul(v)),
        _ => false,
    }
}

fn percent_decode(input: &str) -> Vec<u8> {
    percent_encoding::percent_decode_str(input).collect()
}
