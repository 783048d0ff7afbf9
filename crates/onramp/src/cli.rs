//! The command line: `onramp serve`, `onramp migrate`, `onramp check-config`.

use crate::app::{Ports, Service};
use crate::config::Config;
use anyhow::Context;
use clap::{Parser, Subcommand};
use std::path::PathBuf;

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
            store.migrate().await?;
            println!("migrations applied");
            Ok(())
        }
        Command::Serve => serve(config).await,
        Command::Instance { action } => instance(config, action).await,
        Command::Outbox { action } => outbox(config, action).await,
        Command::App { action: AppAction::Key { action } } => app_key(config, action).await,
        Command::App { action: AppAction::Contract { action } } => app_contract(config, action).await,
        Command::App { action: AppAction::Origins { action } } => app_origins(config, action).await,
    }
}

async fn instance(config: Config, action: InstanceAction) -> anyhow::Result<()> {
    use onramp_core::instance_name;
    // Built in full, so the database is migrated and the configured instances exist.
    let service = Service::build(config.clone(), Ports::default()).await?;
    let onramp = service.state.onramp.clone();
    match action {
        InstanceAction::Create { name } | InstanceAction::Retry { name }
            if instance_name::is_reserved(&name) =>
        {
            anyhow::bail!("{name:?} is a reserved name");
        }
        InstanceAction::Create { name } if !instance_name::is_valid(&name) => {
            anyhow::bail!(
                "{name:?} is not a valid instance name (lower-case letters, digits, inner '-'; at most 63)"
            );
        }
        InstanceAction::Create { name } => match onramp.provisioner().create_instance(&name).await {
            Ok(_) => println!(
                "created instance {name} ({})",
                onramp_core::login::instance_url(&onramp.settings().public_url, &name)
            ),
            Err(onramp_core::CoreError::InstanceNameUnavailable) => {
                anyhow::bail!("instance {name:?} already exists")
            }
            Err(onramp_core::CoreError::Validation(errors)) => {
                let why: Vec<String> = errors.iter().map(|e| format!("{} {}", e.field, e.message)).collect();
                anyhow::bail!("{}", why.join("; "))
            }
            Err(onramp_core::CoreError::ProvisioningFailed) => {
                anyhow::bail!("provisioning {name:?} failed (see the log); `onramp instance show {name}`")
            }
            Err(e) => return Err(e.into()),
        },
        InstanceAction::Retry { name } => match onramp.provisioner().retry(&name).await {
            Ok(_) => println!("provisioned instance {name}"),
            Err(onramp_core::CoreError::InstanceNotFound) => anyhow::bail!("no instance {name:?}"),
            Err(onramp_core::CoreError::Validation(_)) => {
                anyhow::bail!("instance {name:?} is not waiting to be provisioned")
            }
            Err(onramp_core::CoreError::ProvisioningFailed) => {
                anyhow::bail!(
                    "provisioning {name:?} failed again (see the log); it stays provisioning_failed"
                )
            }
            Err(e) => return Err(e.into()),
        },
        InstanceAction::Set {
            name,
            open_registration,
            open_reg_role,
            open_reg_email_service,
            open_reg_email_template,
            allow_keyless_registration,
            default_language,
        } => {
            let instance = onramp
                .operator()
                .instance_summary(&name)
                .await
                .map_err(|_| anyhow::anyhow!("no instance {name:?}"))?;
            let blank = |v: String| Some(v).filter(|v| !v.is_empty());
            if let Some(v) = open_reg_email_service.as_deref()
                && !v.is_empty()
                && !config.has_mail_service(&name, v)
            {
                anyhow::bail!(
                    "{v:?} is neither \"default\" nor a mail service of {name:?} in the configuration"
                );
            }
            if let Some(v) = open_reg_email_template.as_deref()
                && !v.is_empty()
                && !config.has_mail_template(v)
            {
                anyhow::bail!("{v:?} is neither a built-in template nor in mail_templates");
            }
            let default_language = match default_language.as_deref() {
                None => None,
                Some("") => Some(None),
                Some(tag) => Some(Some(
                    onramp_core::language::language_tag(tag)
                        .ok_or_else(|| anyhow::anyhow!("{tag:?} is not a language tag"))?,
                )),
            };
            let settings = onramp
                .operator()
                .update_instance_settings(instance.id, |settings| {
                    if let Some(v) = open_registration {
                        settings.open_registration = v;
                    }
                    if let Some(v) = open_reg_role {
                        settings.open_reg_role = blank(v);
                    }
                    if let Some(v) = open_reg_email_service {
                        settings.open_reg_email_service = blank(v);
                    }
                    if let Some(v) = open_reg_email_template {
                        settings.open_reg_email_template = blank(v);
                    }
                    if let Some(v) = allow_keyless_registration {
                        settings.allow_keyless = v;
                    }
                    if let Some(v) = default_language {
                        settings.default_language = v;
                    }
                    Ok(())
                })
                .await?;
            println!("{name}: {settings:?}");
        }
        InstanceAction::List => {
            println!("{:<32} {:<19} {:>5} {:>8}  created", "name", "status", "apps", "users");
            for i in onramp.operator().list_instances().await? {
                println!(
                    "{:<32} {:<19} {:>5} {:>8}  {}",
                    i.name,
                    i.status,
                    i.apps,
                    i.users,
                    i.created_at.date()
                );
            }
        }
        InstanceAction::Show { name } => {
            let i = onramp
                .operator()
                .instance_summary(&name)
                .await
                .map_err(|_| anyhow::anyhow!("no instance {name:?}"))?;
            println!(
                "name:     {}\nstatus:   {}\napps:     {}\nusers:    {}\ncreated:  {}\nowner:    {}\ndatabase: {}",
                i.name,
                i.status,
                i.apps,
                i.users,
                i.created_at,
                i.owner_email.as_deref().unwrap_or("-"),
                i.database.as_deref().unwrap_or("-"),
            );
            if let Some(detail) = &i.status_detail {
                println!("failure:  {detail}");
            }
        }
        InstanceAction::Disable { name } | InstanceAction::Enable { name }
            if instance_name::is_reserved(&name) =>
        {
            anyhow::bail!("{name:?} is built in and cannot be disabled or enabled");
        }
        InstanceAction::Disable { name } => {
            if !onramp.operator().set_instance_active(&name, false).await? {
                anyhow::bail!("no active or disabled instance {name:?}");
            }
            println!("disabled instance {name}");
        }
        InstanceAction::Enable { name } => {
            if !onramp.operator().set_instance_active(&name, true).await? {
                anyhow::bail!(
                    "no active or disabled instance {name:?} (one still provisioning needs `retry`)"
                );
            }
            println!("enabled instance {name}");
        }
    }
    Ok(())
}

async fn outbox(config: Config, action: OutboxAction) -> anyhow::Result<()> {
    // Built in full: the database is migrated, and this node's key is checked against it.
    let service = Service::build(config, Ports::default()).await?;
    let onramp = &service.state.onramp;
    match action {
        OutboxAction::Status => {
            let status = onramp.operator().outbox_status(20).await?;
            let c = status.counts;
            println!("pending:   {}\ndelivered: {}\ndead:      {}", c.pending, c.sent, c.dead);
            // Why mail is not going out, newest first: a TLS or credentials error is a
            // configuration error, and says so.
            if !status.failures.is_empty() {
                println!("\nlast errors (newest first):");
            }
            for f in status.failures {
                println!(
                    "#{} {} {} after {} attempt(s): {}",
                    f.id, f.kind, f.status, f.attempts, f.last_error
                );
            }
        }
        OutboxAction::Retry => {
            let n = onramp.operator().retry_dead_outbox().await?;
            println!("{n} dead-lettered message(s) are due again");
        }
    }
    Ok(())
}

async fn app_key(config: Config, action: KeyAction) -> anyhow::Result<()> {
    let service = Service::build(config, Ports::default()).await?;
    let onramp = &service.state.onramp;
    let instance_of = |name: &str| {
        let name = name.to_owned();
        async move {
            onramp
                .operator()
                .instance_summary(&name)
                .await
                .map(|s| onramp_core::model::Instance { id: s.id, name: s.name })
                .map_err(|_| anyhow::anyhow!("no instance {name:?}"))
        }
    };
    match action {
        KeyAction::Create { instance, app, label } => {
            let inst = instance_of(&instance).await?;
            match onramp.api_keys().create(&inst, &app, &label).await {
                Ok((record, key)) => {
                    println!("{key}");
                    eprintln!("created key {} for {instance}/{app}; it is shown only now", record.id);
                }
                Err(onramp_core::CoreError::AppNotFound) => {
                    anyhow::bail!("no app {app:?} in instance {instance:?}")
                }
                Err(e) => return Err(e.into()),
            }
        }
        KeyAction::List { instance } => {
            let inst = instance_of(&instance).await?;
            println!(
                "{:<28} {:<16} {:<9} {:<8} {:<20} revoked  label",
                "id", "app", "prefix", "source", "created"
            );
            for k in onramp.operator().api_keys(inst.id).await? {
                println!(
                    "{:<28} {:<16} {:<9} {:<8} {:<20} {:<8} {}",
                    k.id,
                    k.app_id,
                    k.prefix,
                    k.source,
                    k.created_at.date(),
                    k.revoked_at.map(|r| r.date().to_string()).unwrap_or_else(|| "-".into()),
                    k.label
                );
            }
        }
        KeyAction::Revoke { instance, id } => {
            let inst = instance_of(&instance).await?;
            if !onramp.operator().revoke_api_key(inst.id, &id).await? {
                anyhow::bail!("no live key {id:?} in instance {instance:?}");
            }
            println!("revoked {id}");
        }
    }
    Ok(())
}

async fn app_origins(config: Config, action: OriginsAction) -> anyhow::Result<()> {
    let service = Service::build(config, Ports::default()).await?;
    let policy = &service.state.origins;
    let (OriginsAction::Set { instance, app, .. } | OriginsAction::List { instance, app }) = &action;
    let inst = service
        .state
        .onramp
        .operator()
        .instance_summary(instance)
        .await
        .map_err(|_| anyhow::anyhow!("no instance {instance:?}"))?;
    let not_found = |e| match e {
        onramp_core::CoreError::AppNotFound => anyhow::anyhow!("no app {app:?} in instance {instance:?}"),
        other => other.into(),
    };
    match &action {
        OriginsAction::Set { origins, partner, .. } => {
            let saved = policy.set(inst.id, app, origins, *partner).await.map_err(|e| match e {
                onramp_core::origin::SetOriginsError::Core(e) => not_found(e),
                invalid => anyhow::anyhow!("{invalid}"),
            })?;
            println!(
                "origins of {instance}/{app}: {}",
                if saved.is_empty() { "-".into() } else { saved.join(" ") }
            );
        }
        OriginsAction::List { .. } => {
            let a = policy.app(inst.id, app).await.map_err(not_found)?;
            let signup = onramp_core::origin::OriginPattern::of_url(&a.signup_url)
                .map(|o| o.to_string())
                .unwrap_or_else(|| "-".into());
            println!("signup_url origin: {signup}");
            for o in &a.allowed_origins {
                println!("allowed: {o}");
            }
            println!("partner surfaces: {}", if a.browser_partner_calls { "allowed" } else { "closed" });
        }
    }
    Ok(())
}

async fn app_contract(config: Config, action: ContractAction) -> anyhow::Result<()> {
    let service = Service::build(config, Ports::default()).await?;
    let onramp = &service.state.onramp;
    let (ContractAction::Set { instance, app, .. } | ContractAction::List { instance, app }) = &action;
    let (instance, app) = (instance.clone(), app.clone());
    let inst = onramp
        .operator()
        .instance_summary(&instance)
        .await
        .map_err(|_| anyhow::anyhow!("no instance {instance:?}"))?;
    let no_app = |e| match e {
        onramp_core::CoreError::AppNotFound => anyhow::anyhow!("no app {app:?} in instance {instance:?}"),
        other => other.into(),
    };
    match action {
        ContractAction::Set { id, fields, default, .. } => {
            let fields: Vec<onramp_core::model::ContractField> =
                serde_json::from_str(&fields).context("--fields must be a JSON array of fields")?;
            let problems = crate::config::contract_problems(&app, &id, &fields);
            if !problems.is_empty() {
                anyhow::bail!("{}", problems.join("\n"));
            }
            let contract = onramp_core::model::Contract { id: id.clone(), fields };
            onramp.operator().put_contract(inst.id, &app, &contract, default).await.map_err(no_app)?;
            println!("contract {id} of {instance}/{app} saved");
        }
        ContractAction::List { .. } => {
            let (contracts, default) = onramp.operator().contracts(inst.id, &app).await.map_err(no_app)?;
            for c in contracts {
                let mark = if default.as_deref() == Some(c.id.as_str()) { " (default)" } else { "" };
                println!("{}{mark}: {}", c.id, serde_json::to_string(&c.fields)?);
            }
        }
    }
    Ok(())
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
