//! `onramp outbox …` and `onramp app key|origins|contract …`.

use super::*;

pub(super) async fn outbox(config: Config, action: OutboxAction) -> anyhow::Result<()> {
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
            let n = onramp.admin().retry_dead(&onramp_core::admin::AdminPrincipal::cli(), None).await?;
            println!("{n} dead-lettered message(s) are due again");
        }
    }
    Ok(())
}

pub(super) async fn app_key(config: Config, action: KeyAction) -> anyhow::Result<()> {
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
            match onramp
                .api_keys()
                .create(&onramp_core::admin::AdminPrincipal::cli(), &inst, &app, &label)
                .await
            {
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
            if !onramp
                .operator()
                .revoke_api_key(&onramp_core::admin::AdminPrincipal::cli(), inst.id, &id)
                .await?
            {
                anyhow::bail!("no live key {id:?} in instance {instance:?}");
            }
            println!("revoked {id}");
        }
    }
    Ok(())
}

pub(super) async fn app_origins(config: Config, action: OriginsAction) -> anyhow::Result<()> {
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
            let saved = policy
                .set(&onramp_core::admin::AdminPrincipal::cli(), inst.id, app, origins, *partner)
                .await
                .map_err(|e| match e {
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

pub(super) async fn app_contract(config: Config, action: ContractAction) -> anyhow::Result<()> {
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
            onramp
                .operator()
                .put_contract(&onramp_core::admin::AdminPrincipal::cli(), inst.id, &app, &contract, default)
                .await
                .map_err(no_app)?;
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
