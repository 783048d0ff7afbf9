//! The pages of FastTrack's confirmation mail (issue 11, item 1). The mail sent to the address
//! a FastTrack was made with carries two links, to `/fast-track/confirm` ("this was me") and
//! `/fast-track/release` ("this was not me"). Opening one changes nothing: it shows what the
//! FastTrack made and one button. Only pressing it (a same-site POST) answers, because mail
//! scanners open links but press no buttons. The pages live on the public host, in the
//! platform's look, and work whether or not FastTrack is still enabled.

// The helpers here end a handler early with the page to show; a page is a `Response`.
#![allow(clippy::result_large_err)]

use super::{Look, account, query_value, same_origin_post};
use crate::http::AppState;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use minijinja::context;
use onramp_core::model::{ClaimAnswer, FastTrackClaim, PLATFORM_INSTANCE};
use onramp_core::provision::{CONFIRM_CLAIM_PATH, RELEASE_CLAIM_PATH};

fn look(state: &AppState, headers: &HeaderMap) -> Look {
    Look::of(state, headers, PLATFORM_INSTANCE, None)
}

/// The page of one answer: what the link is about, and the button that gives the answer.
fn question(
    state: &AppState,
    look: &Look,
    answer: ClaimAnswer,
    token: &str,
    claim: &FastTrackClaim,
) -> Response {
    let t = |key: &str| state.pages.text(look.lang, key);
    let (action, prefix, other_url, other_label) = match answer {
        ClaimAnswer::Confirm => (CONFIRM_CLAIM_PATH, "claim_confirm", RELEASE_CLAIM_PATH, "claim_to_release"),
        ClaimAnswer::Release => (RELEASE_CLAIM_PATH, "claim_release", CONFIRM_CLAIM_PATH, "claim_to_confirm"),
    };
    let other_url = format!(
        "{other_url}?{}",
        url::form_urlencoded::Serializer::new(String::new()).append_pair("token", token).finish()
    );
    state.pages.render(
        look,
        StatusCode::OK,
        "claim.html",
        context! {
            action,
            token,
            release => answer == ClaimAnswer::Release,
            title => t(&format!("{prefix}_title")),
            lead => t(&format!("{prefix}_lead")),
            button => t(&format!("{prefix}_button")),
            note => t(&format!("{prefix}_note")),
            instance => claim.instance.clone().unwrap_or_default(),
            email => claim.email,
            other_url,
            other_label => t(other_label),
        },
    )
}

async fn show(state: AppState, headers: HeaderMap, query: Option<String>, answer: ClaimAnswer) -> Response {
    let look = look(&state, &headers);
    let token = query_value(query.as_deref(), "token").unwrap_or_default();
    match state.onramp.claims().look(&token).await {
        Ok(claim) => question(&state, &look, answer, &token, &claim),
        Err(e) => state.pages.error(&look, &e),
    }
}

async fn answer(
    state: AppState,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
    answer: ClaimAnswer,
) -> Response {
    let look = look(&state, &headers);
    if !same_origin_post(&headers) {
        return state.pages.message(&look, StatusCode::FORBIDDEN, "form_refused_title", "form_refused_text");
    }
    let fields = match account::form(&state, &look, body) {
        Ok(f) => f,
        Err(page) => return page,
    };
    let token = account::field(&fields, "token");
    let claim = match state.onramp.claims().answer(&token, answer).await {
        Ok(claim) => claim,
        Err(e) => return state.pages.error(&look, &e),
    };
    let key = match answer {
        ClaimAnswer::Confirm => "claim_confirmed",
        ClaimAnswer::Release => {
            state.metrics.fast_tracks_released.inc_by(u64::from(claim.instance.is_some()));
            "claim_released"
        }
    };
    let fill = |text: String| {
        text.replace("{email}", &claim.email)
            .replace("{instance}", claim.instance.as_deref().unwrap_or_default())
    };
    let title = state.pages.text(look.lang, &format!("{key}_title"));
    let message = fill(state.pages.text(look.lang, &format!("{key}_text")));
    state.pages.render(&look, StatusCode::OK, "message.html", context! { title, message, state => "ok" })
}

/// `GET /fast-track/confirm?token=…`: "was it you?", with the button that confirms.
pub async fn confirm_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Response {
    show(state, headers, q, ClaimAnswer::Confirm).await
}

/// `POST /fast-track/confirm`: the address is its owner's; the dashboard user becomes active.
pub async fn confirm(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    answer(state, headers, body, ClaimAnswer::Confirm).await
}

/// `GET /fast-track/release?token=…`: "not you?", with the button that releases the address.
pub async fn release_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Response {
    show(state, headers, q, ClaimAnswer::Release).await
}

/// `POST /fast-track/release`: the instance is disabled, the dashboard user deleted, and the
/// address free to FastTrack again.
pub async fn release(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    answer(state, headers, body, ClaimAnswer::Release).await
}
