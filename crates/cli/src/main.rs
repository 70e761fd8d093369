mod channel_cmd;
mod dlq_cmd;
mod shop_cmd;
mod tenant_cmd;
mod user_cmd;

use anyhow::Context;
use clap::{Parser, Subcommand};
use switchboard_runtime::{Config, Services, init_tracing, redacted, shutdown_signal};
use switchboard_store::{DEMO_SLUG, Store};

#[derive(Parser)]
#[command(
    name = "switchboard",
    version,
    about = "AI customer-service gateway and worker fleet"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway, the AI worker, the dispatcher and the listener in one process.
    Up,
    /// Run the gateway alone (scale `ai-worker`, `dispatcher` and `listener` beside it).
    Gateway,
    /// Run an AI worker: drafts replies. Scale by running more.
    AiWorker,
    /// Run a dispatcher: sends replies when they are due. Scale by running more.
    Dispatcher,
    /// Run a listener: Telegram long polling, IMAP mailboxes, Discord Gateway sessions.
    /// Any number may run; each channel is read by one at a time.
    Listener,
    /// Create the database if needed and apply every migration.
    Migrate,
    /// Show what the responder and the decision engine would do with a message, sending nothing.
    Explain {
        #[arg(long, default_value = DEMO_SLUG)]
        tenant: String,
        /// The customer's message.
        text: String,
    },
    /// Evaluate the decision engine on a case file (see the README) and print the verdict.
    Decide {
        /// The case as JSON; `-` reads standard input.
        #[arg(long)]
        input: String,
        /// Seeds the human-delay randomness, for repeatable plans.
        #[arg(long)]
        seed: Option<u64>,
    },
    /// Depth and consumers of the work queues.
    Queues,
    /// The fleet: every process that heartbeats, the work queue, due drafts and sends, and
    /// hints on what to add.
    Fleet {
        /// The report as JSON, as `GET /api/v1/admin/fleet` gives it.
        #[arg(long)]
        json: bool,
    },
    /// Failed sends and dead inbound jobs: list them, or replay them once the cause is fixed.
    Dlq {
        #[command(subcommand)]
        action: dlq_cmd::DlqAction,
    },
    /// Read or change a tenant's decision, conversation, human-delay, flag and policy settings.
    Settings {
        #[command(subcommand)]
        action: SettingsAction,
    },
    /// Add, list, disable or enable a tenant's channels.
    Channel {
        #[command(subcommand)]
        cmd: channel_cmd::ChannelCommand,
    },
    /// Print the inbound events a raw webhook body produces, or why it is rejected.
    Normalize {
        #[arg(long, value_enum)]
        channel: channel_cmd::PlatformKind,
        /// The body; `-` reads standard input.
        file: String,
    },
    /// Telegram webhook registration.
    Webhook {
        #[command(subcommand)]
        action: WebhookAction,
    },
    /// Set a feature flag for one tenant or, without --tenant, globally.
    Flag {
        /// DECISION_ENGINE_ENABLED, AI_AUTOSEND_ENABLED, HUMAN_DELAY_ENABLED, RAG_ENABLED or CHANNEL_<KIND>_ENABLED.
        key: String,
        /// on, off, or unset (fall back to the global value or the default).
        value: String,
        #[arg(long)]
        tenant: Option<String>,
    },
    /// The platform's tenants (shops): add, list, show, disable, enable.
    Tenant {
        #[command(subcommand)]
        action: tenant_cmd::TenantAction,
    },
    /// A tenant's API tokens for its own systems: add (printed once), list, revoke.
    Token {
        #[command(subcommand)]
        action: tenant_cmd::TokenAction,
    },
    /// A tenant's knowledge base: import documents, list, show, remove, and search it.
    Kb {
        #[command(subcommand)]
        action: shop_cmd::KbAction,
    },
    /// A tenant's products: import a catalogue file, list.
    Catalog {
        #[command(subcommand)]
        action: shop_cmd::CatalogAction,
    },
    /// A tenant's leads: the contact details customers gave in conversations.
    Leads {
        #[command(subcommand)]
        action: shop_cmd::LeadsAction,
    },
    /// A shop's operator accounts: add, list, set-role, disable, enable, remove,
    /// reset-password, link-telegram.
    User {
        #[command(subcommand)]
        action: user_cmd::UserAction,
    },
}

#[derive(Subcommand)]
enum WebhookAction {
    /// Register the gateway's webhook (server.public_url) for a Telegram channel.
    Set { channel: uuid::Uuid },
}

#[derive(Subcommand)]
enum SettingsAction {
    /// Print the tenant's effective settings as JSON.
    Show {
        #[arg(long, default_value = DEMO_SLUG)]
        tenant: String,
    },
    /// Change the fields given in a JSON document (the shape `show` prints) as a JSON merge
    /// patch: `{"decision":{"t_auto":0.7}}` changes that one value; `null` removes an
    /// optional field.
    Set {
        #[arg(long, default_value = DEMO_SLUG)]
        tenant: String,
        /// The document; `-` reads standard input.
        #[arg(long)]
        input: String,
        /// Replace the sections given whole instead (fields left out take their defaults).
        #[arg(long)]
        replace: bool,
    },
}

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // Pure commands: no configuration, no connections.
    match &cli.command {
        Command::Decide { input, seed } => return decide(input, *seed),
        Command::Normalize { channel, file } => return channel_cmd::normalize(*channel, file),
        _ => {}
    }
    let config = Config::load()?;
    init_tracing(&config.log);
    match cli.command {
        Command::Up => up(config, switchboard::Parts::ALL).await,
        Command::Gateway => up(config, switchboard::Parts::GATEWAY).await,
        Command::AiWorker | Command::Dispatcher | Command::Listener => {
            role(config, &cli.command).await
        }
        Command::Migrate => {
            Store::migrate(&config.database.url)
                .await
                .with_context(|| format!("migrating {}", redacted(&config.database.url)))?;
            println!("migrations applied");
            Ok(())
        }
        Command::Explain { tenant, text } => explain(config, &tenant, &text).await,
        Command::Decide { .. } | Command::Normalize { .. } => Ok(()),
        Command::Channel { cmd } => channel_cmd::run(config, cmd).await,
        Command::Webhook {
            action: WebhookAction::Set { channel },
        } => channel_cmd::set_webhook(config, channel).await,
        Command::Settings { action } => settings(config, action).await,
        Command::User { action } => user_cmd::run(config, action).await,
        Command::Tenant { action } => tenant_cmd::run(config, action).await,
        Command::Kb { action } => shop_cmd::kb(config, action).await,
        Command::Token { action } => tenant_cmd::token(config, action).await,
        Command::Catalog { action } => shop_cmd::catalog(config, action).await,
        Command::Leads { action } => shop_cmd::leads(config, action).await,
        Command::Flag { key, value, tenant } => flag(config, &key, &value, tenant.as_deref()).await,
        Command::Dlq { action } => dlq_cmd::run(config, action).await,
        Command::Fleet { json } => fleet(config, json).await,
        Command::Queues => {
            let stats =
                switchboard_bus::queue_stats(&config.amqp, switchboard_bus::INBOUND).await?;
            println!("{:<40} {:>10} {:>10}", "queue", "messages", "consumers");
            for q in stats {
                println!("{:<40} {:>10} {:>10}", q.queue, q.messages, q.consumers);
            }
            Ok(())
        }
    }
}

/// One worker role in this process, with its own metrics endpoint; the gateway (or a
/// `migrate`) has applied the migrations.
async fn role(config: Config, command: &Command) -> anyhow::Result<()> {
    switchboard_runtime::serve_metrics(&config.metrics)?;
    let services = Services::connect(config).await?;
    let shutdown = shutdown_signal();
    let name = match command {
        Command::AiWorker => "ai-worker",
        Command::Dispatcher => "dispatcher",
        _ => "listener",
    };
    let beat = tokio::spawn(switchboard_runtime::heartbeat(
        services.clone(),
        vec![name],
        shutdown.clone(),
    ));
    match command {
        Command::AiWorker => switchboard_ai_worker::run(services, shutdown).await,
        Command::Dispatcher => switchboard_dispatcher::run(services, shutdown).await,
        _ => switchboard_listener::run(services, shutdown).await,
    }
    let _ = beat.await;
    Ok(())
}

async fn up(config: Config, parts: switchboard::Parts) -> anyhow::Result<()> {
    let bind = format!("{}:{}", config.server.host, config.server.port);
    let public = config.server.public_url.trim_end_matches('/').to_owned();
    let listener = tokio::net::TcpListener::bind(&bind)
        .await
        .with_context(|| format!("binding {bind}"))?;
    let shutdown = shutdown_signal();
    let mut running = switchboard::start(config, listener, parts, shutdown)
        .await
        .context("starting switchboard")?;
    println!("Switchboard is up on http://{}", running.addr);
    println!("Chat with the demo shop: {public}/chat/{DEMO_SLUG}");
    println!(
        "Operator console: {public}/console (sign in with a user from `switchboard user add`)"
    );
    while running.tasks.join_next().await.is_some() {}
    Ok(())
}

async fn explain(config: Config, tenant: &str, text: &str) -> anyhow::Result<()> {
    Store::migrate(&config.database.url).await?;
    let services = Services::connect(config).await?;
    if tenant == DEMO_SLUG {
        services.store.seed_demo().await?;
    }
    let tenant_id = services
        .store
        .tenant_id(tenant)
        .await
        .with_context(|| format!("tenant {tenant:?}"))?;
    let settings = services.store.tenant_settings(tenant_id).await?;
    let situation = switchboard_ai_worker::Situation::fresh(&settings);
    let (drafted, outcome) =
        switchboard_ai_worker::evaluate(&services, tenant_id, &settings, text, &[], situation)
            .await?;
    let draft = &drafted.draft;
    let out = serde_json::json!({
        "tenant": tenant,
        "provider": drafted.provider,
        "draft_error": drafted.error,
        "mode": situation.conversation.mode,
        "intent": draft.intent,
        "reply": draft.reply,
        "scores": {
            "similarity": draft.similarity_score,
            "intent": draft.intent_score,
            "self_check": draft.self_check_score,
        },
        "used_sources": draft.used_sources,
        "missing_fields": draft.missing_fields,
        "confidence": outcome.confidence,
        "decision": outcome.decision,
        "autosend_eligible": outcome.autosend_eligible,
        "autosend_block_reason": outcome.autosend_block_reason,
        "penalties": outcome.penalties,
        "explanations": outcome.explanations,
        "within_working_hours": outcome.within_working_hours,
        "delay": outcome.delay,
    });
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(())
}

fn read_input(input: &str) -> anyhow::Result<String> {
    Ok(if input == "-" {
        std::io::read_to_string(std::io::stdin())?
    } else {
        std::fs::read_to_string(input).with_context(|| format!("reading {input}"))?
    })
}

async fn store(config: &Config) -> anyhow::Result<Store> {
    Store::migrate(&config.database.url).await?;
    let store = Store::connect_lazy(&config.database.url, 2)?;
    store.seed_demo().await?;
    Ok(store)
}

async fn settings(config: Config, action: SettingsAction) -> anyhow::Result<()> {
    let store = store(&config).await?;
    let (tenant, input) = match &action {
        SettingsAction::Show { tenant } => (tenant, None),
        SettingsAction::Set {
            tenant,
            input,
            replace,
        } => (tenant, Some((input, *replace))),
    };
    let tenant_id = store
        .tenant_id(tenant)
        .await
        .with_context(|| format!("tenant {tenant:?}"))?;
    if let Some((input, replace)) = input {
        let written: serde_json::Value =
            serde_json::from_str(&read_input(input)?).context("parsing the settings document")?;
        let cipher =
            switchboard_store::crypto::Cipher::from_base64(&config.security.master_key).ok();
        let how = if replace {
            switchboard_store::Write::Replace
        } else {
            switchboard_store::Write::Merge
        };
        store
            .apply_settings(tenant_id, &written, how, "cli", cipher.as_ref())
            .await?;
    }
    println!(
        "{}",
        serde_json::to_string_pretty(&store.settings_doc(tenant_id).await?)?
    );
    Ok(())
}

async fn flag(config: Config, key: &str, value: &str, tenant: Option<&str>) -> anyhow::Result<()> {
    let value = match value {
        "on" | "true" => Some(true),
        "off" | "false" => Some(false),
        "unset" => None,
        other => anyhow::bail!("flag value must be on, off or unset, not {other:?}"),
    };
    let store = store(&config).await?;
    let tenant_id = match tenant {
        Some(t) => Some(
            store
                .tenant_id(t)
                .await
                .with_context(|| format!("tenant {t:?}"))?,
        ),
        None => None,
    };
    store.set_flag(tenant_id, key, value).await?;
    println!(
        "{key} {} for {}",
        value.map_or("unset", |v| if v { "on" } else { "off" }),
        tenant.unwrap_or("every tenant")
    );
    Ok(())
}

fn decide(input: &str, seed: Option<u64>) -> anyhow::Result<()> {
    use rand::SeedableRng;
    let text = read_input(input)?;
    let case: switchboard_engine::Case = serde_json::from_str(&text).context("parsing the case")?;
    case.settings.validate()?;
    case.human_delay.validate()?;
    let mut rng = match seed {
        Some(s) => rand::rngs::StdRng::seed_from_u64(s),
        None => rand::rngs::StdRng::from_os_rng(),
    };
    let verdict = switchboard_engine::evaluate(&case, &mut rng)?;
    println!("{}", serde_json::to_string_pretty(&verdict)?);
    Ok(())
}

async fn fleet(config: Config, json: bool) -> anyhow::Result<()> {
    let services = Services::connect(config).await?;
    let r = switchboard_runtime::fleet::report(&services).await;
    if json {
        println!("{}", serde_json::to_string_pretty(&r)?);
        return Ok(());
    }
    let now = chrono::Utc::now();
    println!(
        "{:<22} {:<16} {:>7} {:>8} {:>9} {:>9} {:>8}  channels",
        "roles", "host", "pid", "version", "up", "in flight", "done/min"
    );
    for p in &r.processes {
        let up = (now - p.started_at).num_seconds().max(0);
        println!(
            "{:<22} {:<16} {:>7} {:>8} {:>8}s {:>9} {:>8}  {}",
            p.roles.join(","),
            p.host,
            p.pid,
            p.version,
            up,
            p.in_flight,
            p.done_last_minute,
            p.channels.len()
        );
    }
    println!();
    println!("{:<40} {:>10} {:>10}", "queue", "messages", "consumers");
    for q in &r.queues {
        println!("{:<40} {:>10} {:>10}", q.queue, q.messages, q.consumers);
    }
    println!(
        "queue lag (newest job): {:.1} s",
        r.queue_lag_ms as f64 / 1000.0
    );
    if let Some(due) = &r.due {
        println!(
            "due drafts: {} (oldest {:.1} s); due sends: {} (oldest {:.1} s)",
            due.drafts, due.drafts_oldest_secs, due.sends, due.sends_oldest_secs
        );
    }
    for h in &r.hints {
        println!("hint: {h}");
    }
    Ok(())
}
