//! `lendcore operators add` and `lendcore api-keys create`: the first admin and the first keys
//! are made from the command line, where only someone holding the database's credentials can
//! run them; after that, admins manage access over the API.

use std::sync::Arc;

use anyhow::Context;
use lendcore_domain::access::{Permission, Role};
use lendcore_engine::access::{api_keys, operators};
use lendcore_engine::{Engine, SystemClock};

use crate::config::Config;
use crate::serve;

/// Who the audit names for access granted from the command line.
const CLI_ACTOR: &str = "cli:lendcore";

async fn engine(config: &Config) -> anyhow::Result<Engine> {
    let store = serve::open_store(config).await?;
    store.migrate().await.context("migrating")?;
    let engine = Engine::new(store, Arc::new(SystemClock));
    serve::with_vault(engine, config)
}

pub async fn add_operator(config: &Config, username: &str, role: Role) -> anyhow::Result<()> {
    let engine = engine(config).await?;
    let created = operators::create(&engine, CLI_ACTOR, username, role).await?;
    println!(
        "operator   {} ({})",
        created.operator.username,
        role.as_str()
    );
    println!("password   {}", created.password);
    println!("totp       {}", created.totp_secret);
    println!("totp uri   {}", created.totp_uri);
    println!();
    println!("Shown once. Hand them over privately; sign in at POST /v1/auth/operators/sign-in.");
    engine.store.close().await;
    Ok(())
}

pub async fn create_api_key(
    config: &Config,
    name: &str,
    scopes: &[String],
    all: bool,
) -> anyhow::Result<()> {
    let scopes: Vec<String> = if all {
        Permission::ALL
            .iter()
            .map(|p| p.as_str().to_owned())
            .collect()
    } else {
        scopes.to_vec()
    };
    let engine = engine(config).await?;
    let created = api_keys::create(&engine, CLI_ACTOR, None, name, &scopes).await?;
    println!("{}", created.key);
    eprintln!(
        "API key {} ({}) with scopes {}; shown once, send it as Authorization: Bearer …",
        created.api_key.id,
        created.api_key.name,
        created.api_key.scopes.join(" ")
    );
    engine.store.close().await;
    Ok(())
}
