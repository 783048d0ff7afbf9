//! `onramp admin token …` and `onramp user …`: the control plane from the host's shell, through
//! the same use cases as the admin API (as the `cli` principal: every instance, read-write).

use super::*;
use onramp_core::admin::{AdminPrincipal, UserQuery};
use onramp_core::model::UserRecord;

#[derive(Debug, Subcommand)]
pub enum AdminAction {
    /// Admin tokens for the admin API and console (stored hashed; a new token is shown once).
    Token {
        #[command(subcommand)]
        action: TokenAction,
    },
}

#[derive(Debug, Subcommand)]
pub enum TokenAction {
    /// Create a token: global unless --instance, read-write unless --read-only.
    Create {
        #[arg(long)]
        instance: Option<String>,
        #[arg(long)]
        read_only: bool,
        #[arg(long, default_value = "")]
        label: String,
    },
    /// List tokens (id, prefix, scope, created, revoked, label).
    List,
    /// Revoke a token by its id; calls with it are refused at once.
    Revoke { id: String },
}

#[derive(Debug, Subcommand)]
pub enum UserAction {
    /// Find users of an instance (newest first): by the start of an address, a whole one, a
    /// username, a phone or a status.
    Find {
        instance: String,
        #[arg(long)]
        email: Option<String>,
        #[arg(long)]
        username: Option<String>,
        #[arg(long)]
        phone: Option<String>,
        #[arg(long)]
        status: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
    /// Show a user (by id, `usr_…`).
    Show { instance: String, user_id: String },
    /// Disable a user: no login on any surface; sessions end.
    Disable { instance: String, user_id: String },
    /// Enable a disabled user.
    Enable { instance: String, user_id: String },
    /// Erase a user's personal data (an anonymous tombstone stays for the audit log).
    Delete { instance: String, user_id: String },
    /// Import users from a file: a JSON array or JSON Lines of {email, name, username, phone,
    /// status, language, metadata, password_hash} (see the README). Rows whose address is a
    /// user already are skipped, so a run can be repeated. Prints each refused row and a
    /// summary.
    Import { instance: String, file: PathBuf },
}

fn why(e: onramp_core::CoreError) -> anyhow::Error {
    match e {
        onramp_core::CoreError::Validation(errors) => {
            let each: Vec<String> = errors.iter().map(|e| format!("{} {}", e.field, e.message)).collect();
            anyhow::anyhow!("{}", each.join("; "))
        }
        onramp_core::CoreError::InstanceNotFound => anyhow::anyhow!("no such instance"),
        onramp_core::CoreError::UserNotFound => anyhow::anyhow!("no such user"),
        onramp_core::CoreError::WrongState(message) => anyhow::anyhow!("{message}"),
        other => other.into(),
    }
}

pub(super) async fn admin(config: Config, action: AdminAction) -> anyhow::Result<()> {
    let service = Service::build(config, Ports::default()).await?;
    let admin = service.state.onramp.admin();
    let cli = AdminPrincipal::cli();
    let AdminAction::Token { action } = action;
    match action {
        TokenAction::Create { instance, read_only, label } => {
            let (record, token) =
                admin.create_token(&cli, instance.as_deref(), read_only, &label).await.map_err(why)?;
            println!("{token}");
            eprintln!("created admin token {} ({}); it is shown only now", record.id, scope(&record));
        }
        TokenAction::List => {
            println!(
                "{:<22} {:<10} {:<28} {:<20} {:<10} label",
                "id", "prefix", "scope", "created", "revoked"
            );
            for t in admin.tokens(&cli).await.map_err(why)? {
                println!(
                    "{:<22} {:<10} {:<28} {:<20} {:<10} {}",
                    t.id,
                    t.prefix,
                    scope(&t),
                    t.created_at.date(),
                    t.revoked_at.map(|r| r.date().to_string()).unwrap_or_else(|| "-".into()),
                    t.label
                );
            }
        }
        TokenAction::Revoke { id } => {
            admin.revoke_token(&cli, &id).await.map_err(why)?;
            println!("revoked {id}");
        }
    }
    Ok(())
}

fn scope(t: &onramp_core::model::AdminTokenRecord) -> String {
    let reach = t.instance_name.clone().unwrap_or_else(|| "every instance".into());
    format!("{reach}, {}", if t.scope.read_only { "read-only" } else { "read-write" })
}

fn line(u: &UserRecord) -> String {
    format!(
        "{:<22} {:<32} {:<20} {:<11} {}",
        u.public_id,
        u.email,
        u.username.as_deref().unwrap_or("-"),
        u.status.as_str(),
        u.created_at.date()
    )
}

pub(super) async fn user(config: Config, action: UserAction) -> anyhow::Result<()> {
    let service = Service::build(config, Ports::default()).await?;
    let admin = service.state.onramp.admin();
    let cli = AdminPrincipal::cli();
    match action {
        UserAction::Find { instance, email, username, phone, status, limit } => {
            let query = UserQuery { email, username, phone, status, cursor: None, limit: Some(limit) };
            let page = admin.users(&cli, &instance, &query).await.map_err(why)?;
            println!("{:<22} {:<32} {:<20} {:<11} created", "id", "email", "username", "status");
            for u in &page.items {
                println!("{}", line(u));
            }
            if page.next.is_some() {
                eprintln!("(more: raise --limit or narrow the search)");
            }
        }
        UserAction::Show { instance, user_id } => {
            let u = admin.user(&cli, &instance, &user_id).await.map_err(why)?;
            println!("id:        {}", u.public_id);
            println!("email:     {}", u.email);
            println!("username:  {}", u.username.as_deref().unwrap_or("-"));
            println!("name:      {}", u.name);
            println!("phone:     {}", u.profile.phone.as_deref().unwrap_or("-"));
            println!("status:    {}", u.status.as_str());
            println!("app:       {}", u.app_id.as_deref().unwrap_or("-"));
            println!("roles:     {}", if u.roles.is_empty() { "-".into() } else { u.roles.join(", ") });
            println!("created:   {}", u.created_at);
            println!("activated: {}", u.activated_at.map(|t| t.to_string()).unwrap_or_else(|| "-".into()));
            println!("sessions:  {}", u.sessions);
        }
        UserAction::Disable { instance, user_id } => {
            let u = admin.set_user_enabled(&cli, &instance, &user_id, false).await.map_err(why)?;
            println!("{} is {}", u.public_id, u.status.as_str());
        }
        UserAction::Enable { instance, user_id } => {
            let u = admin.set_user_enabled(&cli, &instance, &user_id, true).await.map_err(why)?;
            println!("{} is {}", u.public_id, u.status.as_str());
        }
        UserAction::Import { instance, file } => {
            let target = admin.import_target(&cli, &instance).await.map_err(why)?;
            let file =
                tokio::fs::File::open(&file).await.with_context(|| format!("opening {}", file.display()))?;
            let chunks = futures_util::stream::unfold(file, |mut file| async move {
                use tokio::io::AsyncReadExt;
                let mut buf = vec![0u8; 64 * 1024];
                match file.read(&mut buf).await {
                    Ok(0) => None,
                    Ok(n) => {
                        buf.truncate(n);
                        Some((Ok::<_, std::io::Error>(axum::body::Bytes::from(buf)), file))
                    }
                    Err(e) => Some((Err(e), file)),
                }
            });
            let (tx, mut rx) = tokio::sync::mpsc::channel(16);
            let onramp = service.state.onramp.clone();
            let importing = tokio::spawn(async move {
                crate::http::admin::users::run_import(&onramp, &cli, &target, Box::pin(chunks), &tx).await
            });
            while let Some(lines) = rx.recv().await {
                for line in String::from_utf8_lossy(&lines).lines() {
                    if line.contains("\"result\":\"error\"") {
                        eprintln!("{line}");
                    }
                }
            }
            let summary = importing.await?;
            println!(
                "created {}, skipped {} (already users), refused {}",
                summary.created, summary.skipped, summary.errors
            );
            if let Some(why) = summary.stopped {
                anyhow::bail!("the import stopped early: {why}");
            }
        }
        UserAction::Delete { instance, user_id } => {
            admin.delete_user(&cli, &instance, &user_id).await.map_err(why)?;
            println!("{user_id}'s personal data is erased");
        }
    }
    Ok(())
}
