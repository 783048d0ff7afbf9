//! `Onramp`: the core's entry point. It is built from the ports (store, clock, token generator,
//! hashing pool, seal key) and the settings, and hands out the use cases, each a struct of its
//! own holding only the ports it needs.

use crate::admin::Admin;
use crate::api_keys::ApiKeys;
use crate::apps::Catalog;
use crate::claims::Claims;
use crate::clock::Clock;
use crate::common::{Budget, Common, Directory, Letters};
use crate::contract_account::ContractAccounts;
use crate::error::CoreError;
use crate::hasher::{HashError, PasswordHasher};
use crate::login::Logins;
use crate::model::*;
use crate::open_registration::OpenRegistration;
use crate::operator::Operator;
use crate::partner_signup::PartnerSignup;
use crate::ports::Store;
use crate::provision::{Provisioner, Provisioning};
use crate::seal::SealKey;
use crate::settings::Settings;
use crate::signup::Signup;
use crate::token::TokenGenerator;
use std::sync::Arc;
use time::OffsetDateTime;
use tokio::sync::Notify;

/// The core, wired: the use cases over one store.
pub struct Onramp {
    store: Arc<dyn Store>,
    common: Common,
    signup: Signup,
    logins: Logins,
    open_registration: OpenRegistration,
    api_keys: ApiKeys,
    partner_signup: PartnerSignup,
    contract_accounts: ContractAccounts,
    provisioner: Provisioner,
    catalog: Catalog,
    admin: Admin,
    events: crate::events::Events,
    invites: crate::invitations::Invites,
}

impl Onramp {
    pub fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        tokens: Arc<dyn TokenGenerator>,
        hasher: PasswordHasher,
        seal: SealKey,
        settings: Settings,
        remote: Arc<dyn crate::screening::Remote>,
    ) -> Self {
        let directory = Directory::new(store.clone(), store.clone(), tokens.clone(), clock.clone());
        let common = Common {
            letters: Letters {
                seal,
                tokens: tokens.clone(),
                clock: clock.clone(),
                message_id_domain: settings.message_id_domain.clone(),
            },
            budget: Budget {
                store: store.clone(),
                clock: clock.clone(),
                limits: settings.rate_limits.clone(),
            },
            directory: Arc::new(directory),
            screening: Arc::new(crate::screening::Screening::new(
                settings.screening.clone(),
                remote,
                store.clone(),
                clock.clone(),
            )),
            clock,
            tokens,
            hasher,
            settings: Arc::new(settings),
            outbox_wake: Arc::new(Notify::new()),
            background: Default::default(),
        };
        let logins = Logins {
            common: common.clone(),
            users: store.clone(),
            sessions: store.clone(),
            audit: store.clone(),
        };
        let claims = Claims::new(&common, store.clone());
        let signup = Signup { common: common.clone(), signups: store.clone(), outbox: store.clone() };
        let open_registration = OpenRegistration {
            common: common.clone(),
            signups: store.clone(),
            users: store.clone(),
            outbox: store.clone(),
            logins: logins.clone(),
        };
        let contract_accounts =
            ContractAccounts { common: common.clone(), apps: store.clone(), contracts: store.clone() };
        let provisioner = Provisioner {
            common: common.clone(),
            instances: store.clone(),
            users: store.clone(),
            logins: logins.clone(),
            claims,
            provisioning: Provisioning::default(),
        };
        let admin = Admin {
            common: common.clone(),
            tokens: store.clone(),
            users: store.clone(),
            audit: store.clone(),
            outbox: store.clone(),
            instances: store.clone(),
            instance_settings: store.clone(),
            signup: signup.clone(),
            open_registration: open_registration.clone(),
            contract_accounts: contract_accounts.clone(),
            provisioner: provisioner.clone(),
            invites: crate::invitations::Invites { common: common.clone(), invitations: store.clone() },
        };
        Self {
            signup,
            open_registration,
            admin,
            api_keys: ApiKeys { common: common.clone(), apps: store.clone() },
            partner_signup: PartnerSignup {
                common: common.clone(),
                signups: store.clone(),
                instance_settings: store.clone(),
                users: store.clone(),
            },
            contract_accounts,
            provisioner,
            catalog: Catalog { apps: store.clone(), instance_settings: store.clone() },
            events: crate::events::Events { common: common.clone(), journal: store.clone() },
            invites: crate::invitations::Invites { common: common.clone(), invitations: store.clone() },
            logins,
            common,
            store,
        }
    }

    /// How new instances are set up (init SQL, webhooks, failure policy).
    pub fn with_provisioning(mut self, provisioning: Provisioning) -> Self {
        self.admin.provisioner.provisioning = provisioning.clone();
        self.provisioner.provisioning = provisioning;
        self
    }

    /// Invitations: create, list, resend, revoke; the hosted page looks and accepts.
    pub fn invites(&self) -> &crate::invitations::Invites {
        &self.invites
    }

    /// Lifecycle events: the worker publishes what the audit log marked.
    pub fn events(&self) -> &crate::events::Events {
        &self.events
    }

    /// `/v1` signup and activation (seed 004).
    pub fn signup(&self) -> &Signup {
        &self.signup
    }

    /// Logins and sessions, on every surface.
    pub fn logins(&self) -> &Logins {
        &self.logins
    }

    /// DreamFactory open registration, code confirmation and password reset (seed 001).
    pub fn open_registration(&self) -> &OpenRegistration {
        &self.open_registration
    }

    /// The apps' API keys.
    pub fn api_keys(&self) -> &ApiKeys {
        &self.api_keys
    }

    /// FastEditor partner signup (seed 002).
    pub fn partner_signup(&self) -> &PartnerSignup {
        &self.partner_signup
    }

    /// dialogportal contract accounts (seed 003).
    pub fn contract_accounts(&self) -> &ContractAccounts {
        &self.contract_accounts
    }

    /// FastTrack (seed 000) and the operator's instance creation.
    pub fn provisioner(&self) -> &Provisioner {
        &self.provisioner
    }

    /// An instance's apps and settings, as the pages and surfaces read them.
    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// FastTrack's account claim (the confirmation mail's answer).
    pub fn claims(&self) -> &Claims {
        &self.provisioner.claims
    }

    /// The operator's use cases (the CLI; the admin API to come).
    pub fn operator(&self) -> Operator {
        Operator::new(self.store.clone(), &self.common)
    }

    /// The control plane: admin tokens, users, the outbox and the audit log (the admin API,
    /// the console and the CLI).
    pub fn admin(&self) -> &Admin {
        &self.admin
    }

    /// The storage, for wiring only (applying the configuration, the outbox worker).
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.common.clock
    }

    pub fn hasher(&self) -> &PasswordHasher {
        &self.common.hasher
    }

    pub fn settings(&self) -> &Settings {
        &self.common.settings
    }

    /// Writes requests did not wait for; the outbox worker waits for them before it looks.
    pub fn background(&self) -> &crate::background::Background {
        &self.common.background
    }

    /// Signalled after every commit that wrote an outbox message.
    pub fn outbox_wake(&self) -> Arc<Notify> {
        self.common.outbox_wake.clone()
    }

    pub fn now(&self) -> OffsetDateTime {
        self.common.now()
    }

    /// Open a sealed outbox message (the outbox worker's one use of the seal key).
    pub fn open_sealed(&self, sealed: &[u8]) -> Result<Vec<u8>, crate::seal::SealError> {
        self.common.letters.seal.open(sealed)
    }

    /// A random UUID from the injected generator (request ids, page nonces).
    pub fn uuid(&self) -> uuid::Uuid {
        self.common.uuid()
    }

    /// The active instance `name` (cached for a few seconds; unknown names are not cached).
    pub async fn instance(&self, name: &str) -> Result<Instance, CoreError> {
        self.common.directory.instance(name).await
    }

    /// Find or create an instance (with a signing key on creation).
    pub async fn ensure_instance(&self, name: &str) -> Result<Instance, CoreError> {
        self.common.directory.ensure_instance(name).await
    }
}

impl From<HashError> for CoreError {
    fn from(e: HashError) -> Self {
        match e {
            HashError::Busy => CoreError::Busy { retry_after_secs: 1 },
            HashError::Failed(m) => CoreError::Internal(m),
        }
    }
}
