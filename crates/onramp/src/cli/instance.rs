//! `onramp instance …`: create, list, show, retry, enable and disable instances.

use super::*;

pub(super) async fn instance(config: Config, action: InstanceAction) -> anyhow::Result<()> {
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
        InstanceAction::Create { name } => {
            match onramp.admin().create_instance(&onramp_core::admin::AdminPrincipal::cli(), &name).await {
                Ok(_) => println!(
                    "created instance {name} ({})",
                    onramp_core::login::instance_url(&onramp.settings().public_url, &name)
                ),
                Err(onramp_core::CoreError::InstanceNameUnavailable) => {
                    anyhow::bail!("instance {name:?} already exists")
                }
                Err(onramp_core::CoreError::Validation(errors)) => {
                    let why: Vec<String> =
                        errors.iter().map(|e| format!("{} {}", e.field, e.message)).collect();
                    anyhow::bail!("{}", why.join("; "))
                }
                Err(onramp_core::CoreError::ProvisioningFailed) => {
                    anyhow::bail!("provisioning {name:?} failed (see the log); `onramp instance show {name}`")
                }
                Err(e) => return Err(e.into()),
            }
        }
        InstanceAction::Retry { name } => {
            match onramp.admin().retry_instance(&onramp_core::admin::AdminPrincipal::cli(), &name).await {
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
            }
        }
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
                    onramp_core::language::Language::parse("default_language", tag)
                        .map_err(|_| anyhow::anyhow!("{tag:?} is not a language tag"))?
                        .into_string(),
                )),
            };
            let settings = onramp
                .operator()
                .update_instance_settings(
                    &onramp_core::admin::AdminPrincipal::cli(),
                    instance.id,
                    |settings| {
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
                    },
                )
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
            if !onramp
                .operator()
                .set_instance_active(&onramp_core::admin::AdminPrincipal::cli(), &name, false)
                .await?
            {
                anyhow::bail!("no active or disabled instance {name:?}");
            }
            println!("disabled instance {name}");
        }
        InstanceAction::Enable { name } => {
            if !onramp
                .operator()
                .set_instance_active(&onramp_core::admin::AdminPrincipal::cli(), &name, true)
                .await?
            {
                anyhow::bail!(
                    "no active or disabled instance {name:?} (one still provisioning needs `retry`)"
                );
            }
            println!("enabled instance {name}");
        }
    }
    Ok(())
}
