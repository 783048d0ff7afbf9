//! Invitations: an address asked to join an instance's app, and how it stands.

use super::*;

/// An invitation to store, with its mail; `replace` earlier live invitations of the address.
#[derive(Debug, Clone)]
pub struct NewInvitation {
    pub public_id: String,
    pub app_id: String,
    pub email: String,
    pub email_canonical: String,
    pub role: Option<String>,
    pub secret_hash: String,
    pub invited_by: String,
    pub created_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
    pub message: NewOutboxMessage,
    pub audit: NewAuditEvent,
}

/// Where an invitation stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InvitationStatus {
    Pending,
    Accepted,
    Revoked,
    Expired,
}

impl InvitationStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Accepted => "accepted",
            Self::Revoked => "revoked",
            Self::Expired => "expired",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Pending, Self::Accepted, Self::Revoked, Self::Expired].into_iter().find(|x| x.as_str() == s)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvitationRecord {
    /// The row's key (a listing's cursor).
    pub key: i64,
    pub public_id: String,
    pub app_id: String,
    pub email: String,
    pub role: Option<String>,
    pub invited_by: String,
    pub created_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
    pub accepted_at: Option<OffsetDateTime>,
    pub revoked_at: Option<OffsetDateTime>,
    /// The user an accepted invitation made, by public id.
    pub user_id: Option<String>,
}

impl InvitationRecord {
    pub fn status(&self, now: OffsetDateTime) -> InvitationStatus {
        if self.accepted_at.is_some() {
            InvitationStatus::Accepted
        } else if self.revoked_at.is_some() {
            InvitationStatus::Revoked
        } else if self.expires_at <= now {
            InvitationStatus::Expired
        } else {
            InvitationStatus::Pending
        }
    }
}

/// Which invitations to list: of one app or all, newest first, before `before`.
#[derive(Debug, Clone, Default)]
pub struct InvitationFilter {
    pub app_id: Option<String>,
    pub email_canonical: Option<String>,
    pub before: Option<i64>,
    pub limit: u32,
}

/// Accepting an invitation: the user it makes (active), their role, and the audit entry.
#[derive(Debug, Clone)]
pub struct Acceptance {
    pub secret_hash: String,
    pub user: NewUser,
    pub now: OffsetDateTime,
    pub audit: NewAuditEvent,
}

/// Why an invitation's secret did not make a user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AcceptError {
    /// No such secret, or revoked, or replaced.
    NotFound,
    Expired,
    AlreadyUsed,
    /// A user holds the address already.
    EmailTaken,
}
