//! The command line: `onramp serve`, `onramp migrate`, `onramp check-config`.

use crate::app::{Ports, Service};
use crate::config::Config;
use anyhow::Context;
use clap::{Parser, Subcommand};
use std::path::PathBuf;

mod admin;
mod apps;
mod instance;

use admin::{AdminAction, UserAction, admin, user};
use apps::{app_contract, app_key, app_origins, outbox};
use instance::instance;

#[derive(Debug, Parser)]
#[command(name = "onramp", version, about = "A self-hosted signup service")]
pub struct Cli {
    /// TOML configuration file (defaults, then this file, then ONRAMP_* variables).
    #[arg(long, global = true, env = "ONRAMP_CONFIG")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP server and the outbox worker.
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Load and validate the configuration, print it (secrets redacted), and exit.
    CheckConfig,
    /// Manage instances (isolated user directories, reached at {name}.{base_domain}).
    Instance {
        #[command(subcommand)]
        action: InstanceAction,
    },
    /// The outbox: what waits, what died; give dead letters another chance.
    Outbox {
        #[command(subcommand)]
        action: OutboxAction,
    },
    /// Manage apps of an instance.
    App {
        #[command(subcommand)]
        action: AppAction,
    },
    /// The admin API's tokens.
    Admin {
        #[command(subcommand)]
        action: AdminAction,
    },
    /// Find, show, disable, enable and delete users.
    User {
        #[command(subcommand)]
        action: UserAction,
    },
}

#[derive(Debug, Subcommand)]
pub enum OutboxAction {
    /// Messages pending, delivered and dead-lettered.
    Status,
    /// Make every dead-lettered message due again, with its attempts reset (after fixing what
    /// made it fail, such as SMTP credentials); running nodes pick them up.
    Retry,
}

#[derive(Debug, Subcommand)]
pub enum AppAction {
    /// API keys of apps (stored hashed; a new key is shown once).
    Key {
        #[command(subcommand)]
        action: KeyAction,
    },
    /// dialogportal contracts of apps.
    Contract {
        #[command(subcommand)]
        action: ContractAction,
    },
    /// Web origins whose pages may call an app's instance from a browser (CORS).
    Origins {
        #[command(subcommand)]
        action: OriginsAction,
    },
}

#[derive(Debug, Subcommand)]
pub enum OriginsAction {
    /// Replace an app's allowed origins, e.g. `https://app.example.com https://*.example.com`
    /// (none: only its signup_url's origin). A value in the configuration file wins at start.
    Set {
        instance: String,
        app: String,
        origins: Vec<String>,
        /// Let these origins call the partner and contract surfaces too (`true` or `false`).
        #[arg(long)]
        partner: Option<bool>,
    },
    /// Show an app's allowed origins, its signup_url's origin, and partner access.
    List { instance: String, app: String },
}

#[derive(Debug, Subcommand)]
pub enum ContractAction {
    /// Create or replace a contract: its fields as a JSON array, e.g.
    /// '[{"name":"email","type":"email","required":true,"unique":true}]'.
    Set {
        instance: String,
        app: String,
        id: String,
        #[arg(long)]
        fields: String,
        /// Make it the app's default contract (the one `POST /user` uses).
        #[arg(long)]
        default: bool,
    },
    /// List an app's contracts.
    List { instance: String, app: String },
}

#[derive(Debug, Subcommand)]
pub enum KeyAction {
    /// Create a key for an app; several may be live at once, for rotation.
    Create {
        instance: String,
        app: String,
        #[arg(long, default_value = "")]
        label: String,
    },
    /// List an instance's keys (id, app, prefix, label, created, revoked).
    List { instance: String },
    /// Revoke a key by its id; requests with it are refused at once.
    Revoke { instance: String, id: String },
}

#[derive(Debug, Subcommand)]
pub enum InstanceAction {
    /// Create an instance: its signing key, roles, default app and own database, then the
    /// provisioning webhooks.
    Create { name: String },
    /// Complete an instance whose provisioning failed (status provisioning_failed).
    Retry { name: String },
    /// Change an instance's user-service settings (DreamFactory open registration).
    Set {
        name: String,
        #[arg(long)]
        open_registration: Option<bool>,
        /// The role self-registered users get (created if missing); "" clears it.
        #[arg(long)]
        open_reg_role: Option<String>,
        /// "default" (the [mail] transport) or a mail service of the instance; "" turns
        /// confirmation off.
        #[arg(long)]
        open_reg_email_service: Option<String>,
        /// A built-in or [[mail_templates]] template; "" for the built-in default.
        #[arg(long)]
        open_reg_email_template: Option<String>,
        /// Accept registrations without an application API key.
        #[arg(long)]
        allow_keyless_registration: Option<bool>,
        /// Mail language when the reader's own is not shipped ("" for English).
        #[arg(long)]
        default_language: Option<String>,
    },
    /// List every instance.
    List,
    /// Show one instance.
    Show { name: String },
    /// Stop serving an instance (its data stays; running nodes notice within seconds).
    Disable { name: String },
    /// Serve a disabled instance again.
    Enable { name: String },
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let config = Config::load(cli.config.as_deref())?;
    match cli.command {
        Command::CheckConfig => {
            println!("configuration is valid:\n{config:#?}");
            Ok(())
        }
        Command::Migrate => {
            let store = onramp_store::connect(&config.database_url(), &Default::default()).await?;
            onramp_core::operator::Operator::migrate(store.as_ref()).await?;
            println!("migrations applied");
            Ok(())
        }
        Command::Serve => serve(config).await,
        Command::Instance { action } => instance(config, action).await,
        Command::Outbox { action } => outbox(config, action).await,
        Command::App { action: AppAction::Key { action } } => app_key(config, action).await,
        Command::App { action: AppAction::Contract { action } } => app_contract(config, action).await,
        Command::App { action: AppAction::Origins { action } } => app_origins(config, action).await,
        Command::Admin { action } => admin(config, action).await,
        Command::User { action } => user(config, action).await,
    }
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let listen = config.listen.clone();
    let server = config.server.clone();
    let metrics_listen = config.metrics.listen.clone();
    if let Some(limit) = crate::server::raise_open_files_limit()
        && (server.max_connections as u64) + 256 > limit
    {
        tracing::warn!(
            limit,
            max_connections = server.max_connections,
            "max_connections is close to the open files limit"
        );
    }
    let service = Service::build(config, Ports::default()).await?;
    let listener =
        tokio::net::TcpListener::bind(&listen).await.with_context(|| format!("binding {listen}"))?;
    let addr = listener.local_addr()?;
    tracing::info!(%addr, "onramp listening");
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|stop| *stop).await;
    };
    let router = service.router();
    let metrics = match metrics_listen {
        Some(at) => {
            let listener = tokio::net::TcpListener::bind(&at)
                .await
                .with_context(|| format!("binding metrics.listen {at}"))?;
            tracing::info!(addr = %listener.local_addr()?, "metrics listening");
            let router = crate::http::ops::metrics_router(service.state.clone());
            let (server, stop) = (server.clone(), stopped(stop_rx.clone()));
            Some(tokio::spawn(async move { crate::server::serve(listener, router, &server, stop).await }))
        }
        None => None,
    };
    let worker = tokio::spawn(service.worker.run(stopped(stop_rx.clone())));
    // SIGTERM: stop accepting, finish the requests in flight, then stop the worker, which
    // lets go of the messages it claimed but did not send.
    let http = crate::server::serve(listener, router, &server, async {
        shutdown_signal().await;
        tracing::info!("shutting down: no new connections; finishing requests in flight");
    });
    http.await?;
    // Writes the requests did not wait for (a reset code and its mail) land before the worker
    // stops, so its last pass sends them or leaves them for the next start.
    service.state.onramp.background().settled(std::time::Duration::from_secs(5)).await;
    let _ = stop_tx.send(true);
    let _ = worker.await;
    if let Some(m) = metrics {
        let _ = m.await;
    }
    tracing::info!("stopped");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}
