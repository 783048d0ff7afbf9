//! Instances: their names, states, provisioning and FastTrack.

use super::*;

/// The database key of an instance; every store call takes one, so no query crosses instances.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct InstanceId(pub i64);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    pub id: InstanceId,
    pub name: String,
}

/// The instance used when the request's host names none.
pub const DEFAULT_INSTANCE: &str = "default";

/// The built-in instance that holds platform (dashboard) users.
pub const PLATFORM_INSTANCE: &str = "platform";

/// An instance as an operator sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceSummary {
    pub id: InstanceId,
    pub name: String,
    pub status: InstanceStatus,
    /// Why provisioning failed.
    pub status_detail: Option<String>,
    pub created_at: OffsetDateTime,
    pub apps: i64,
    pub users: i64,
    /// The platform user who owns it (FastTrack), by email.
    pub owner_email: Option<String>,
    /// Where the instance's own database is (a SQLite file or a PostgreSQL schema).
    pub database: Option<String>,
}

/// Instance states, as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InstanceStatus {
    /// Serving requests.
    Active,
    /// Kept, answering no request.
    Disabled,
    /// Being set up: its rows exist, no request can reach it yet.
    Provisioning,
    /// Set up stopped part-way; `onramp instance retry` completes it.
    ProvisioningFailed,
}

impl InstanceStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Disabled => "disabled",
            Self::Provisioning => "provisioning",
            Self::ProvisioningFailed => "provisioning_failed",
        }
    }

    /// The status a store holds; an unknown one reads as disabled (it serves nothing).
    pub fn parse(s: &str) -> Self {
        match s {
            "active" => Self::Active,
            "provisioning" => Self::Provisioning,
            "provisioning_failed" => Self::ProvisioningFailed,
            _ => Self::Disabled,
        }
    }
}

impl std::fmt::Display for InstanceStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<&str> for InstanceStatus {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// How a new instance is named.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InstanceNaming {
    /// Exactly this name, or `Unique(InstanceName)`.
    Exact(String),
    /// The first free candidate for this base (`joe`, `joe-2`, …; see `instance_name`) that
    /// is not one of `avoid` (the operator's reserved names).
    FirstFree { base: String, avoid: Vec<String> },
}

/// A role of an instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleSpec {
    pub name: String,
    pub description: String,
}

/// Everything a new instance starts with; written in one transaction, in state `provisioning`.
#[derive(Debug, Clone)]
pub struct NewInstance {
    pub naming: InstanceNaming,
    pub key: SigningKeyRecord,
    pub roles: Vec<RoleSpec>,
    /// Its default app.
    pub app: App,
    pub created_at: OffsetDateTime,
}

/// Who a user is beyond their login: the names and contact details a surface collected.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserProfile {
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub display_name: Option<String>,
    pub company: Option<String>,
    pub phone: Option<String>,
}

/// FastTrack's writes (seed 000, steps 2, 3, 5 and 6), committed together or not at all: the
/// dashboard user in `platform`, the instance, its admin (with the same password hash) holding
/// `admin_role`, the admin's one-time login secret, and the dashboard user's claim secret (the
/// confirmation mail's links: "this was me" and "this was not me").
#[derive(Debug, Clone)]
pub struct NewFastTrack {
    pub instance: NewInstance,
    pub owner: NewUser,
    pub admin: NewUser,
    pub profile: UserProfile,
    pub admin_role: String,
    pub login: NewVerification,
    pub claim: NewVerification,
    /// `fast_track.provisioned`, about the dashboard user.
    pub audit: NewAuditEvent,
}

/// What a FastTrack's claim secret is about: the dashboard user and the instance it made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FastTrackClaim {
    pub owner_key: i64,
    pub email: String,
    /// The instance made with it (gone only if an operator deleted it).
    pub instance: Option<String>,
    pub expires_at: OffsetDateTime,
}

/// What the owner of an address says about a FastTrack made with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClaimAnswer {
    /// "This was me": the dashboard user becomes `active`.
    Confirm,
    /// "This was not me": the address is released (see `Store::release_owner`).
    Release,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provisioned {
    pub instance: Instance,
    /// The dashboard user's key (FastTrack's `user.id`).
    pub owner_key: i64,
    pub admin_key: i64,
}
