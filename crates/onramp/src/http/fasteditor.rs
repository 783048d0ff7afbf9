//! FastEditor partner signup (seed 002): `POST /partner/fasteditor/signup` (or the app's
//! `partner_signup_path`), authenticated by `X-Api-Key`. `201 {id, firstName, lastName,
//! userName}`; errors `{message, code}` with a 4xx/5xx status, the message safe to show to the
//! user and in the request's `language` where onramp has it (en, nl, de, fr, es).

use crate::http::AppState;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{OriginalUri, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use onramp_core::CoreError;
use onramp_core::contract_account::codes;
use onramp_core::language::Language;
use onramp_core::partner_signup::PartnerSignupInput;
use serde::Deserialize;
use serde_json::json;

pub const DEFAULT_PATH: &str = "/partner/fasteditor/signup";

/// Stable error codes of this surface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    Unauthorized,
    InvalidRequest,
    MissingField,
    InvalidUsername,
    InvalidLanguage,
    InvalidName,
    PasswordTooWeak,
    UsernameTaken,
    AccountDisabled,
    EmailNotAllowed,
    CaptchaFailed,
    SignupDenied,
    InvitationRequired,
    PayloadTooLarge,
    UnsupportedMediaType,
    OriginNotAllowed,
    MethodNotAllowed,
    RateLimited,
    ServiceUnavailable,
    InternalError,
}

impl Code {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unauthorized => "UNAUTHORIZED",
            Self::InvalidRequest => "INVALID_REQUEST",
            Self::MissingField => "MISSING_FIELD",
            Self::InvalidUsername => "INVALID_USERNAME",
            Self::InvalidLanguage => "INVALID_LANGUAGE",
            Self::InvalidName => "INVALID_NAME",
            Self::PasswordTooWeak => "PASSWORD_TOO_WEAK",
            Self::UsernameTaken => "USERNAME_TAKEN",
            Self::AccountDisabled => "ACCOUNT_DISABLED",
            Self::EmailNotAllowed => "EMAIL_NOT_ALLOWED",
            Self::CaptchaFailed => "CAPTCHA_FAILED",
            Self::SignupDenied => "SIGNUP_DENIED",
            Self::InvitationRequired => "INVITATION_REQUIRED",
            Self::PayloadTooLarge => "PAYLOAD_TOO_LARGE",
            Self::UnsupportedMediaType => "UNSUPPORTED_MEDIA_TYPE",
            Self::OriginNotAllowed => "ORIGIN_NOT_ALLOWED",
            Self::MethodNotAllowed => "METHOD_NOT_ALLOWED",
            Self::RateLimited => "RATE_LIMITED",
            Self::ServiceUnavailable => "SERVICE_UNAVAILABLE",
            Self::InternalError => "INTERNAL_ERROR",
        }
    }

    fn status(self) -> StatusCode {
        match self {
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::UsernameTaken => StatusCode::CONFLICT,
            Self::AccountDisabled | Self::SignupDenied | Self::InvitationRequired => StatusCode::FORBIDDEN,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::OriginNotAllowed => StatusCode::FORBIDDEN,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            Self::ServiceUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::InternalError => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::BAD_REQUEST,
        }
    }

    /// The message for the end user, in `language` (a lower-case BCP 47 tag) where we have it.
    pub fn message(self, language: &str) -> &'static str {
        let lang = language.split('-').next().unwrap_or("en");
        match (self, lang) {
            (Self::Unauthorized, _) => "The partner is not authorised.",
            (Self::InvalidRequest, "nl") => "Het verzoek kon niet worden gelezen.",
            (Self::InvalidRequest, "de") => "Die Anfrage konnte nicht gelesen werden.",
            (Self::InvalidRequest, "fr") => "La demande n'a pas pu être lue.",
            (Self::InvalidRequest, "es") => "No se ha podido leer la solicitud.",
            (Self::InvalidRequest, _) => "The request could not be read.",
            (Self::MissingField, "nl") => "Vul alle verplichte velden in.",
            (Self::MissingField, "de") => "Bitte fülle alle Pflichtfelder aus.",
            (Self::MissingField, "fr") => "Veuillez remplir tous les champs obligatoires.",
            (Self::MissingField, "es") => "Rellena todos los campos obligatorios.",
            (Self::MissingField, _) => "Please fill in all required fields.",
            (Self::InvalidUsername, "nl") => "Vul een geldig e-mailadres in.",
            (Self::InvalidUsername, "de") => "Bitte gib eine gültige E-Mail-Adresse ein.",
            (Self::InvalidUsername, "fr") => "Veuillez saisir une adresse e-mail valide.",
            (Self::InvalidUsername, "es") => "Introduce una dirección de correo válida.",
            (Self::InvalidUsername, _) => "Please enter a valid email address.",
            (Self::InvalidLanguage, _) => "The language must be a language code such as en, nl or en-gb.",
            (Self::InvalidName, "nl") => "Je naam is te lang of bevat ongeldige tekens.",
            (Self::InvalidName, "de") => "Dein Name ist zu lang oder enthält ungültige Zeichen.",
            (Self::InvalidName, "fr") => "Votre nom est trop long ou contient des caractères non valides.",
            (Self::InvalidName, "es") => "Tu nombre es demasiado largo o contiene caracteres no válidos.",
            (Self::InvalidName, _) => "Your name is too long or contains characters that are not allowed.",
            (Self::PasswordTooWeak, "nl") => {
                "Kies een sterker wachtwoord: minstens 8 tekens, niet veelgebruikt en niet je naam of e-mailadres."
            }
            (Self::PasswordTooWeak, "de") => {
                "Bitte wähle ein stärkeres Passwort: mindestens 8 Zeichen, nicht weit verbreitet und nicht dein Name oder deine E-Mail-Adresse."
            }
            (Self::PasswordTooWeak, "fr") => {
                "Choisissez un mot de passe plus sûr : au moins 8 caractères, peu courant, et différent de votre nom ou de votre adresse e-mail."
            }
            (Self::PasswordTooWeak, "es") => {
                "Elige una contraseña más segura: al menos 8 caracteres, poco común y distinta de tu nombre o tu correo."
            }
            (Self::PasswordTooWeak, _) => {
                "Please choose a stronger password: at least 8 characters, not a common one, and not your name or email address."
            }
            (Self::UsernameTaken, "nl") => {
                "Er bestaat al een account met dit e-mailadres. Log in of stel je wachtwoord opnieuw in."
            }
            (Self::UsernameTaken, "de") => {
                "Zu dieser E-Mail-Adresse gibt es bereits ein Konto. Melde dich an oder setze dein Passwort zurück."
            }
            (Self::UsernameTaken, "fr") => {
                "Un compte existe déjà avec cette adresse e-mail. Connectez-vous ou réinitialisez votre mot de passe."
            }
            (Self::UsernameTaken, "es") => {
                "Ya existe una cuenta con este correo. Inicia sesión o restablece tu contraseña."
            }
            (Self::UsernameTaken, _) => {
                "An account with this email address already exists. Sign in or reset your password."
            }
            (Self::AccountDisabled, "nl") => {
                "Dit account is uitgeschakeld. Neem contact op met de ondersteuning."
            }
            (Self::AccountDisabled, "de") => "Dieses Konto ist deaktiviert. Bitte wende dich an den Support.",
            (Self::AccountDisabled, "fr") => "Ce compte est désactivé. Veuillez contacter l'assistance.",
            (Self::AccountDisabled, "es") => {
                "Esta cuenta está desactivada. Ponte en contacto con el soporte."
            }
            (Self::AccountDisabled, _) => "This account is disabled. Please contact support.",
            (Self::EmailNotAllowed, "nl") => {
                "Met dit e-mailadres kun je je niet aanmelden. Gebruik een ander adres."
            }
            (Self::EmailNotAllowed, "de") => {
                "Mit dieser E-Mail-Adresse ist keine Anmeldung möglich. Bitte verwende eine andere."
            }
            (Self::EmailNotAllowed, "fr") => {
                "Cette adresse e-mail ne permet pas de s'inscrire. Veuillez en utiliser une autre."
            }
            (Self::EmailNotAllowed, "es") => "No es posible registrarse con este correo. Usa otra dirección.",
            (Self::EmailNotAllowed, _) => {
                "This email address cannot be used to sign up. Please use another one."
            }
            (Self::CaptchaFailed, "nl") => "De controle of je een mens bent is mislukt. Probeer het opnieuw.",
            (Self::CaptchaFailed, "de") => {
                "Die Prüfung, ob du ein Mensch bist, ist fehlgeschlagen. Bitte versuche es erneut."
            }
            (Self::CaptchaFailed, "fr") => "La vérification anti-robot a échoué. Veuillez réessayer.",
            (Self::CaptchaFailed, "es") => "La comprobación anti-robots ha fallado. Inténtalo de nuevo.",
            (Self::CaptchaFailed, _) => "The check that you are human failed. Please try again.",
            (Self::SignupDenied, _) => "This signup is not allowed.",
            (Self::InvitationRequired, "nl") => "Aanmelden kan alleen met een uitnodiging.",
            (Self::InvitationRequired, "de") => "Die Anmeldung ist nur mit einer Einladung möglich.",
            (Self::InvitationRequired, "fr") => "L'inscription se fait uniquement sur invitation.",
            (Self::InvitationRequired, "es") => "El registro solo es posible con una invitación.",
            (Self::InvitationRequired, _) => "Sign-up is by invitation only.",
            (Self::PayloadTooLarge, _) => "The request is too large.",
            (Self::UnsupportedMediaType, _) => "Send the body as JSON with Content-Type: application/json.",
            (Self::OriginNotAllowed, _) => "Pages of this origin may not call the signup endpoint.",
            (Self::MethodNotAllowed, _) => "The signup endpoint takes POST only.",
            (Self::RateLimited, "nl") => "Te veel pogingen. Probeer het later nog eens.",
            (Self::RateLimited, "de") => "Zu viele Versuche. Bitte versuche es später noch einmal.",
            (Self::RateLimited, "fr") => "Trop de tentatives. Veuillez réessayer plus tard.",
            (Self::RateLimited, "es") => "Demasiados intentos. Inténtalo de nuevo más tarde.",
            (Self::RateLimited, _) => "Too many attempts. Please try again later.",
            (Self::ServiceUnavailable | Self::InternalError, "nl") => {
                "Er ging iets mis bij het aanmaken van je account. Probeer het zo nog eens."
            }
            (Self::ServiceUnavailable | Self::InternalError, "de") => {
                "Beim Anlegen deines Kontos ist etwas schiefgegangen. Bitte versuche es gleich noch einmal."
            }
            (Self::ServiceUnavailable | Self::InternalError, "fr") => {
                "Un problème est survenu lors de la création de votre compte. Veuillez réessayer dans un instant."
            }
            (Self::ServiceUnavailable | Self::InternalError, "es") => {
                "Algo ha fallado al crear tu cuenta. Vuelve a intentarlo en un momento."
            }
            (Self::ServiceUnavailable | Self::InternalError, _) => {
                "Something went wrong while creating your account. Please try again in a moment."
            }
        }
    }
}

pub(crate) fn error(code: Code, language: &str, retry_after: Option<u64>) -> Response {
    let body = json!({ "message": code.message(language), "code": code.as_str() });
    crate::http::with_retry_after((code.status(), axum::Json(body)).into_response(), retry_after)
}

fn core_error(e: CoreError, language: &str) -> Response {
    let code = match &e {
        CoreError::Validation(fields) => {
            let first = fields.first().map(|f| (f.field.as_str(), f.code)).unwrap_or(("", ""));
            match first {
                ("captcha_token", _) => Code::CaptchaFailed,
                (_, "email_domain_not_allowed" | "email_disposable") => Code::EmailNotAllowed,
                (_, "required") => Code::MissingField,
                ("userName", _) => Code::InvalidUsername,
                (_, c) if c == codes::INVALID_LANGUAGE => Code::InvalidLanguage,
                ("password", _) => Code::PasswordTooWeak,
                ("firstName" | "lastName", _) => Code::InvalidName,
                _ => Code::InvalidRequest,
            }
        }
        CoreError::EmailTaken | CoreError::UsernameTaken => Code::UsernameTaken,
        CoreError::AccountDisabled => Code::AccountDisabled,
        CoreError::InvitationRequired => Code::InvitationRequired,
        // The hook's own message, under this surface's code.
        CoreError::SignupDenied { message, .. } => {
            let body = json!({ "message": message, "code": Code::SignupDenied.as_str() });
            return (Code::SignupDenied.status(), axum::Json(body)).into_response();
        }
        CoreError::RateLimited { .. } => Code::RateLimited,
        CoreError::Busy { .. } | CoreError::Unavailable(_) => Code::ServiceUnavailable,
        // Not answers of partner signup: a bug if they reach here.
        CoreError::InstanceNotFound
        | CoreError::AppNotFound
        | CoreError::ContractNotFound
        | CoreError::AccountNotFound
        | CoreError::OpenRegistrationDisabled
        | CoreError::InstanceNameUnavailable
        | CoreError::ProvisioningFailed
        | CoreError::TokenNotFound
        | CoreError::TokenExpired
        | CoreError::TokenUsed
        | CoreError::InvalidCredentials
        | CoreError::NotActivated
        | CoreError::SessionInvalid
        | CoreError::AdminUnauthorized
        | CoreError::AdminForbidden
        | CoreError::UserNotFound
        | CoreError::NotFound { .. }
        | CoreError::WrongState(_)
        | CoreError::Internal(_) => {
            tracing::error!(error = %e, code = e.code(), "partner signup failed");
            Code::InternalError
        }
    };
    let retry_after = e.retry_after();
    error(code, language, retry_after)
}

/// A partner's new user (seed 002): signs in with `userName`, its email address.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct SignupBody {
    /// The user's email address.
    #[schema(required = true)]
    user_name: Option<String>,
    #[schema(required = true)]
    password: Option<String>,
    first_name: Option<String>,
    last_name: Option<String>,
    /// A language tag like `nl` or `en-GB`.
    #[schema(required = true)]
    language: Option<String>,
}

/// FastEditor partner signup (seed 002), at each app's `partner_signup_path`.
#[utoipa::path(post, path = "/partner/fasteditor/signup", operation_id = "fasteditor_signup", tag = "fasteditor", request_body = SignupBody,
    security(("app_key" = [])),
    responses((status = 201, description = "`{id, firstName, lastName, userName}`"),
              (status = 400, body = crate::http::openapi::PartnerErrorBody, description = "`{message, code}`: INVALID_REQUEST, MISSING_FIELD, INVALID_USERNAME, INVALID_LANGUAGE, INVALID_NAME, PASSWORD_TOO_WEAK"),
              (status = 401, body = crate::http::openapi::PartnerErrorBody, description = "UNAUTHORIZED"), (status = 409, body = crate::http::openapi::PartnerErrorBody, description = "USERNAME_TAKEN"),
              (status = 429, body = crate::http::openapi::PartnerErrorBody, description = "RATE_LIMITED"), (status = 503, body = crate::http::openapi::PartnerErrorBody, description = "SERVICE_UNAVAILABLE")))]
pub async fn signup(
    State(state): State<AppState>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    client: super::extract::ClientAddr,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let body = match super::body_bytes(body) {
        Ok(b) => b,
        Err(super::BodyProblem::TooLarge) => return error(Code::PayloadTooLarge, "en", None),
        Err(super::BodyProblem::Unreadable(_)) => return error(Code::InvalidRequest, "en", None),
    };
    // The language for messages, read before anything else can fail.
    let language = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| {
            v.get("language")
                .and_then(|l| l.as_str())
                .and_then(|l| Language::parse("language", l).ok())
                .map(Language::into_string)
        })
        .unwrap_or_else(|| "en".into());
    // An unknown instance is refused as a wrong key is: a partner learns nothing about others.
    let (instance, app) = match super::extract::keyed_app(&state, &headers).await {
        Ok(found) => found,
        Err(super::extract::CallerProblem::Core(e)) => return core_error(e, &language),
        Err(_) => return error(Code::Unauthorized, &language, None),
    };
    // Each app answers at its own path.
    if partner_path(&state, &instance.name, &app.id) != uri.path() {
        return error(Code::Unauthorized, &language, None);
    }
    let request: SignupBody = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(_) => return error(Code::InvalidRequest, &language, None),
    };
    let client = client.key();
    let input = PartnerSignupInput {
        user_name: request.user_name,
        password: request.password,
        first_name: request.first_name,
        last_name: request.last_name,
        language: request.language,
        client,
        captcha_token: super::extract::captcha_header(&headers),
    };
    match state.onramp.partner_signup().sign_up(&instance, &app, input).await {
        Ok(done) => {
            state.metrics.signups.inc();
            let body = json!({
                "id": done.id.to_string(),
                "firstName": done.first_name,
                "lastName": done.last_name,
                "userName": done.user_name,
            });
            (StatusCode::CREATED, axum::Json(body)).into_response()
        }
        Err(e) => core_error(e, &language),
    }
}

/// Any method but `POST`, in this surface's `{message, code}`.
pub async fn wrong_method() -> Response {
    error(Code::MethodNotAllowed, "en", None)
}

/// The path an app's partner signup answers at.
pub fn partner_path(state: &AppState, instance: &str, app: &str) -> String {
    state
        .config
        .instances
        .iter()
        .filter(|i| i.name == instance)
        .flat_map(|i| i.apps.iter())
        .find(|a| a.id == app)
        .map(|a| a.partner_signup_path.clone())
        .unwrap_or_else(|| DEFAULT_PATH.into())
}
