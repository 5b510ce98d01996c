//! `lendcore demo`: a local SQLite database with two demo products, served with the URLs to open.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use lendcore_connectors::channel::sandbox::{Sandbox, SandboxConfig};
use lendcore_connectors::sms::SandboxSms;
use lendcore_domain::access::{Permission, Role};
use lendcore_domain::borrower::{BorrowerInput, BorrowerKind};
use lendcore_domain::credit_line::GrantInput;
use lendcore_domain::product::{NewProductInput, ProductCode, ProductKind, ProductTermsInput};
use lendcore_domain::reasons::Language;
use lendcore_engine::{Engine, EngineError};
use lendcore_engine::{borrowers, credit_lines, products};

use crate::config::{ChannelConfig, Config, Overrides, SmsConfig};
use crate::serve;

pub async fn run(
    config_file: Option<&Path>,
    bind: Option<String>,
    data_dir: &Path,
) -> anyhow::Result<()> {
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("creating {}", data_dir.display()))?;
    let db_path = data_dir.join("demo.sqlite3");
    let db_url = format!("sqlite://{}", db_path.display());
    let mut config = Config::load(
        config_file,
        Overrides {
            db: Some(db_url),
            bind,
        },
    )?;
    serve::init_logging(&config)?;
    // The demo pays out through its own sandbox channel, on a port of its own.
    let sandbox = Sandbox::new(SandboxConfig::default());
    let sandbox_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let sandbox_url = format!("http://{}", sandbox_listener.local_addr()?);
    let sandbox_app = sandbox.router();
    tokio::spawn(async move { axum::serve(sandbox_listener, sandbox_app).await });
    config.channels.insert(
        0,
        ChannelConfig {
            id: "sandbox".to_owned(),
            base_url: sandbox_url.clone(),
            api_key: "demo".to_owned().into(),
            callback_secret: None,
            timeout_ms: 5_000,
        },
    );
    // Sign-in codes go to the demo's own sandbox SMS gateway, whose inbox is browsable.
    let sms = SandboxSms::new(Some("demo".to_owned()));
    let sms_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let sms_url = format!("http://{}", sms_listener.local_addr()?);
    let sms_app = sms.router();
    tokio::spawn(async move { axum::serve(sms_listener, sms_app).await });
    config.sms = Some(SmsConfig {
        base_url: sms_url.clone(),
        api_key: "demo".to_owned().into(),
        timeout_ms: 5_000,
    });
    config.security.pii_key = Some(demo_key(data_dir)?.into());
    // The demo's links open on its own page, so its port is settled before the service
    // starts: links name it. A link address the configuration gives is kept.
    if let Some(bind) = settled_port(&config.server.bind)? {
        config.server.bind = bind.to_string();
        if config.notifications.link_base_url.is_none() && reachable_here(bind) {
            let port = bind.port();
            config.notifications.link_base_url =
                Some(format!("http://127.0.0.1:{port}/links/open?link="));
        }
        if config.notifications.operator_url.is_none() && reachable_here(bind) {
            config.notifications.operator_url = Some(format!("http://127.0.0.1:{}", bind.port()));
        }
    }
    config
        .identity
        .get_or_insert(crate::config::IdentityConfig::Sandbox);
    config
        .bureau
        .get_or_insert(crate::config::BureauConfig::Sandbox);
    let admin_file = data_dir.join("admin.txt");
    let db_shown = std::path::absolute(&db_path).unwrap_or(db_path);
    serve::run(config, move |engine, address| async move {
        let key = demo_access(&engine, &admin_file).await?;
        lendcore_engine::acting::on_behalf_of("demo:seed".to_owned(), seed(&engine)).await?;
        let borrower_id =
            lendcore_engine::acting::on_behalf_of("demo:seed".to_owned(), seed_borrower(&engine))
                .await?;
        let line_id = seed_line(&engine, &borrower_id).await?;
        let examples = match lendcore_engine::acting::on_behalf_of(
            "demo:seed".to_owned(),
            seed_policy(&engine),
        )
        .await?
        {
            // The first run shows the policy at work; later runs find what it did.
            true => Some(
                lendcore_engine::acting::on_behalf_of("demo:seed".to_owned(), seed_decisions(&engine))
                    .await?,
            ),
            false => None,
        };
        let base = format!("http://{address}");
        println!();
        println!("lendcore demo is running. Database: {}", db_shown.display());
        println!();
        println!("  Home            {base}/");
        println!("  API reference   {base}/docs/api");
        println!("  Products        {base}/v1/products");
        println!("  Credit policy   {base}/v1/policies   (docs/POLICY.md; features: {base}/v1/features)");
        println!("  OpenAPI         {base}/openapi.json");
        println!("  Service status  {base}/status   ({base}/v1/status for apps)");
        println!("  Health          {base}/healthz   {base}/readyz");
        println!("  Metrics         {base}/metrics");
        println!();
        println!("  Sandbox channel {sandbox_url}/v1/payouts (accounts like acct-1~timeout misbehave)");
        println!("  Sandbox SMS     {sms_url}/v1/messages (sign-in codes land here; bearer: demo)");
        println!();
        println!("  API key (every scope, made for this run): {key}");
        println!("  Admin operator: see {}", admin_file.display());
        println!();
        println!("Try:  export KEY={key}");
        println!("      curl -s {base}/v1/products/cash-12m -H \"authorization: Bearer $KEY\"");
        println!("      curl -s {base}/v1/credit-lines/{line_id} -H \"authorization: Bearer $KEY\"");
        println!("      curl -s {base}/v1/drawdowns/quotes -H \"authorization: Bearer $KEY\" -H 'content-type: application/json' \\");
        println!("        -d '{{\"line_id\": \"{line_id}\", \"product_code\": \"cash-12m\", \"amount_minor\": 1000000, \"term\": 12, \"account\": \"acct-1\"}}'");
        println!("      then POST its confirmation_token to {base}/v1/drawdowns/confirm (with an Idempotency-Key header),");
        println!("      GET /v1/drawdowns/{{id}}, and POST /v1/loans/{{id}}/view-link: the link texted to the demo borrower");
        println!("      ({DEMO_MOBILE}, in the sandbox SMS inbox) opens on {base}/links/open");
        if let Some(seen) = &examples {
            println!("The default credit policy decided, on this first run (records: GET /v1/borrowers/{{id}}/decisions):");
            println!("      approved   GET {base}/v1/applications/{}   (its record: .../decision)", seen.approved);
            println!("      declined   GET {base}/v1/applications/{}   with its top reasons", seen.declined);
            println!("      held       GET {base}/v1/drawdowns/{}   the 4th drawdown in a day (its decision record also warns of 90% use);", seen.held);
            println!("                 POST .../review/release or .../review/decline as a risk operator");
        }
        println!("A borrower: POST {base}/v1/auth/codes {{\"mobile\": \"13812345678\"}}, read the code at");
        println!("      {sms_url}/v1/messages (bearer demo), POST it to {base}/v1/auth/codes/verify, then");
        println!("      POST {base}/v1/applications with the session token and follow /v1/applications/{{id}}/status");
        println!("Stop with Ctrl-C.");
        println!();
        Ok(())
    })
    .await
}

/// A fresh API key with every scope for this run (the last run's is revoked), and the admin
/// operator, made on the first run with its credentials written to `admin_file` (0600).
async fn demo_access(engine: &Arc<Engine>, admin_file: &Path) -> anyhow::Result<String> {
    use lendcore_engine::access::{api_keys, operators};
    const ACTOR: &str = "demo:seed";
    for old in api_keys::list(engine).await? {
        if old.name == "demo" && old.revoked_at.is_none() {
            api_keys::revoke(engine, ACTOR, &old.id).await?;
        }
    }
    let scopes: Vec<String> = Permission::ALL
        .iter()
        .map(|p| p.as_str().to_owned())
        .collect();
    let key = api_keys::create(engine, ACTOR, None, "demo", &scopes)
        .await?
        .key;
    if !operators::list(engine)
        .await?
        .iter()
        .any(|o| o.username == "admin")
    {
        let admin = operators::create(engine, ACTOR, "admin", Role::Admin).await?;
        // A file left from an earlier database would name an admin that no longer exists.
        if admin_file.exists() {
            std::fs::remove_file(admin_file)
                .with_context(|| format!("replacing {}", admin_file.display()))?;
        }
        write_private(
            admin_file,
            &format!(
                "username  admin\npassword  {}\ntotp      {}\ntotp uri  {}\n",
                admin.password, admin.totp_secret, admin.totp_uri
            ),
        )?;
    }
    Ok(key)
}

/// Writes a new file only its owner can read.
fn write_private(path: &Path, contents: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    file.write_all(contents.as_bytes())?;
    Ok(())
}

/// The demo's personal data key: made on the first run and kept beside its database, so the
/// borrowers it stored can be read on the next. (In production the key comes from the
/// configuration, kept apart from the database.)
fn demo_key(data_dir: &Path) -> anyhow::Result<String> {
    let path = data_dir.join("pii.key");
    match std::fs::read_to_string(&path) {
        Ok(key) => return Ok(key.trim().to_owned()),
        // Only a missing key is made anew: any other failure must not replace the key the
        // demo's borrowers were sealed with.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    }
    let key = hex::encode(rand::random::<[u8; 32]>());
    write_private(&path, &key)?;
    Ok(key)
}

/// The demo borrower's mobile number: the one the printed sign-in example uses.
const DEMO_MOBILE: &str = "13812345678";

/// `bind` as given, with its port chosen now if it is 0; `None` when it is a host name (the
/// demo then serves there without links of its own).
fn settled_port(bind: &str) -> anyhow::Result<Option<std::net::SocketAddr>> {
    let Ok(wanted) = bind.parse::<std::net::SocketAddr>() else {
        return Ok(None);
    };
    if wanted.port() != 0 {
        return Ok(Some(wanted));
    }
    let chosen = std::net::TcpListener::bind(wanted)
        .with_context(|| format!("binding {bind}"))?
        .local_addr()?;
    Ok(Some(chosen))
}

/// Whether the demo, served at `bind`, answers on 127.0.0.1, where its links point (a link
/// signs its borrower in, so only https or this machine may carry one).
fn reachable_here(bind: std::net::SocketAddr) -> bool {
    match bind.ip() {
        std::net::IpAddr::V4(ip) => ip.is_loopback() || ip.is_unspecified(),
        std::net::IpAddr::V6(_) => false,
    }
}

/// The demo borrower, registered on the first run and found by number after.
async fn seed_borrower(engine: &Arc<Engine>) -> anyhow::Result<String> {
    let lookup = borrowers::Lookup::Mobile(DEMO_MOBILE.to_owned());
    if let Some(existing) = borrowers::find(engine, &lookup).await?.into_iter().next() {
        return Ok(existing.id);
    }
    let registered = borrowers::register(
        engine,
        BorrowerInput {
            kind: Some(BorrowerKind::Individual),
            name: "张三".to_owned(),
            resident_id: Some("11010519491231002X".to_owned()),
            mobile: Some(DEMO_MOBILE.to_owned()),
            bank_account: Some("6222020200112233445".to_owned()),
            language: Some(Language::ZhHans),
            ..BorrowerInput::default()
        },
        None,
    )
    .await
    .context("registering the demo borrower")?;
    Ok(registered.into_inner().id)
}

/// The demo borrower's credit line, granted on the first run.
async fn seed_line(engine: &Arc<Engine>, borrower_id: &str) -> anyhow::Result<String> {
    if let Some(existing) = credit_lines::of_borrower(engine, borrower_id)
        .await?
        .into_iter()
        .next()
    {
        return Ok(existing.line.id);
    }
    let granted = credit_lines::grant(
        engine,
        GrantInput {
            borrower_id: borrower_id.to_owned(),
            currency: "CNY".to_owned(),
            limit_minor: 5_000_000,
            rate_tier: None,
            valid_from: None,
            valid_until: engine.clock.now() + chrono::Duration::days(365),
            actor: "demo:seed".to_owned(),
            note: Some("demo line".to_owned()),
        },
        None,
    )
    .await
    .context("seeding the demo credit line")?;
    Ok(granted.into_inner().line.id)
}

/// The default credit policy, authored by one demo risk officer and activated by another, on
/// the first run; `true` when it was put in effect now.
async fn seed_policy(engine: &Arc<Engine>) -> anyhow::Result<bool> {
    use lendcore_domain::decision::{DEFAULT_POLICY, PolicyCode};
    use lendcore_engine::decisions;
    if !decisions::list(engine).await?.is_empty() {
        return Ok(false);
    }
    let code = PolicyCode::parse("consumer").map_err(|e| anyhow::anyhow!("{e}"))?;
    let document = serde_json::from_str(DEFAULT_POLICY).context("the default policy")?;
    decisions::author(engine, &demo_operator("demo-risk"), &code, document, None)
        .await
        .context("authoring the default policy")?;
    decisions::activate(engine, &demo_operator("demo-checker"), &code, 1, None, None)
        .await
        .context("activating the default policy")?;
    Ok(true)
}

fn demo_operator(username: &str) -> lendcore_engine::access::Principal {
    lendcore_engine::access::Principal::Operator {
        id: username.to_owned(),
        username: username.to_owned(),
        role: Role::Risk,
        session_id: "demo-seed".to_owned(),
    }
}

/// What the default policy decided on the demo's first run.
struct Examples {
    approved: String,
    declined: String,
    held: String,
}

/// Two applicants decided by the policy (one approved, one declined with its reasons) and a
/// busy borrower's fourth drawdown in a day, held for review with a warning. (The demo
/// borrower's own line is left for the newcomer to draw on.)
async fn seed_decisions(engine: &Arc<Engine>) -> anyhow::Result<Examples> {
    let approved = seed_application(
        engine,
        (
            "李四",
            "13800000001",
            "110105199203150126",
            1_500_000,
            2_000_000,
        ),
    )
    .await?;
    let declined = seed_application(
        engine,
        (
            "王五 bureau-risky",
            "13800000002",
            "440305200601010121",
            200_000,
            5_000_000,
        ),
    )
    .await?;
    let busy = borrowers::register(
        engine,
        BorrowerInput {
            kind: Some(BorrowerKind::Individual),
            name: "赵六".to_owned(),
            resident_id: Some("320102199507070125".to_owned()),
            mobile: Some("13800000003".to_owned()),
            bank_account: Some("6222020200112233446".to_owned()),
            language: Some(Language::ZhHans),
            ..BorrowerInput::default()
        },
        None,
    )
    .await
    .context("registering the busy demo borrower")?
    .into_inner()
    .id;
    let line_id = credit_lines::grant(
        engine,
        GrantInput {
            borrower_id: busy,
            currency: "CNY".to_owned(),
            limit_minor: 5_000_000,
            rate_tier: None,
            valid_from: None,
            valid_until: engine.clock.now() + chrono::Duration::days(365),
            actor: "demo:seed".to_owned(),
            note: Some("demo line of a busy borrower".to_owned()),
        },
        None,
    )
    .await
    .context("granting the busy borrower's line")?
    .into_inner()
    .line
    .id;
    let draw = |amount_minor: i64| lendcore_engine::drawdowns::DrawdownRequest {
        line_id: line_id.clone(),
        product: ProductCode::parse("cash-12m").expect("a valid code"),
        amount_minor,
        term: 12,
        split: None,
        account: "acct-1".to_owned(),
    };
    let mut held = String::new();
    for amount in [1_500_000, 1_500_000, 1_500_000, 100_000] {
        let quoted = lendcore_engine::drawdowns::quote(engine, draw(amount), None)
            .await
            .context("quoting a demo drawdown")?
            .into_inner();
        let confirmed =
            lendcore_engine::drawdowns::confirm(engine, &quoted.confirmation_token, None)
                .await
                .context("confirming a demo drawdown")?
                .into_inner();
        held = confirmed.drawdown.id;
    }
    Ok(Examples {
        approved,
        declined,
        held,
    })
}

/// An applicant who applies, submits and verifies by bank card (the sandbox provider); the
/// policy decides at once. The application's id.
async fn seed_application(
    engine: &Arc<Engine>,
    (name, mobile, resident_id, income, requested): (&str, &str, &str, i64, i64),
) -> anyhow::Result<String> {
    use lendcore_domain::application::Form;
    use lendcore_engine::applications;
    let principal = lendcore_engine::access::Principal::Borrower {
        session_id: format!("demo-{mobile}"),
        mobile_index: engine.vault()?.index("mobile", mobile),
        borrower_id: None,
        link: None,
    };
    let draft = applications::start(engine, &principal, None)
        .await?
        .into_inner();
    let id = draft.application.id;
    applications::save(
        engine,
        &principal,
        &id,
        draft.application.revision,
        Form {
            name: Some(name.to_owned()),
            resident_id: Some(resident_id.to_owned()),
            mobile: Some(mobile.to_owned()),
            bank_account: Some("6222020200112233445".to_owned()),
            requested_limit_minor: Some(requested),
            monthly_income_minor: Some(income),
            ..Form::default()
        },
    )
    .await?;
    applications::submit(engine, &principal, &id, Some(Language::ZhHans), None).await?;
    applications::verify(
        engine,
        &principal,
        &id,
        "bank_card",
        &serde_json::json!({}),
        "demo",
    )
    .await
    .with_context(|| format!("verifying demo applicant {name}"))?;
    Ok(id)
}

/// Creates the demo products unless they exist already (the demo database survives restarts).
async fn seed(engine: &Arc<Engine>) -> anyhow::Result<()> {
    for product in demo_products()? {
        let code = ProductCode::parse(&product.code).map_err(|e| anyhow::anyhow!("{e}"))?;
        match products::get_product(engine, &code).await {
            Ok(_) => continue,
            Err(EngineError::NotFound { .. }) => {}
            Err(other) => return Err(other.into()),
        }
        products::create_product(engine, product, None)
            .await
            .with_context(|| format!("seeding demo product {code}"))?;
    }
    Ok(())
}

fn demo_products() -> anyhow::Result<Vec<NewProductInput>> {
    let cash: ProductTermsInput = serde_json::from_value(serde_json::json!({
        "amount": {"min_minor": 100_000, "max_minor": 5_000_000},
        "terms": {"unit": "month", "options": [3, 6, 12]},
        "rate": {"basis": "annual", "value": "0.18"},
        "rate_tiers": {"preferred": "0.12"},
        "repayment_method": "equal_installment",
        "fees": [{"code": "service", "timing": "upfront", "rate": "0.01"}],
        "penalty_daily_rate": "0.0005",
        "grace_days": 3
    }))?;
    let revolving: ProductTermsInput = serde_json::from_value(serde_json::json!({
        "amount": {"min_minor": 10_000, "max_minor": 20_000_000},
        "terms": {"unit": "month", "options": [1, 3, 6, 12]},
        "rate": {"basis": "daily", "value": "0.0004"},
        "rate_tiers": {"preferred": "0.0003"},
        "repayment_method": "revolving_daily",
        "penalty_daily_rate": "0.0006",
        "grace_days": 3
    }))?;
    Ok(vec![
        NewProductInput {
            code: "cash-12m".into(),
            name: "Cash loan, up to 12 months (等额本息)".into(),
            kind: ProductKind::Installment,
            currency: "CNY".into(),
            terms: cash,
            effective_from: None,
        },
        NewProductInput {
            code: "daily-credit".into(),
            name: "Revolving credit line with daily interest (借呗-style)".into(),
            kind: ProductKind::Revolving,
            currency: "CNY".into(),
            terms: revolving,
            effective_from: None,
        },
    ])
}
