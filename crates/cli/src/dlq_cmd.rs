//! `switchboard dlq`: what failed for good, and putting it back once the cause is fixed.
//! Two kinds: sends the dispatcher gave up on (the outbox's dead letters) and inbound jobs
//! the workers gave up on (the broker's dead-letter queue). Prints ids and reasons, never
//! message text.

use anyhow::Context;
use clap::Subcommand;
use serde_json::{Value, json};
use switchboard_bus::{DeadLetter, INBOUND};
use switchboard_runtime::Config;
use uuid::Uuid;

#[derive(Subcommand)]
pub enum DlqAction {
    /// Print failed sends (one tenant's with --tenant) and dead inbound jobs as JSON.
    List {
        #[arg(long)]
        tenant: Option<String>,
        /// The most dead inbound jobs to read.
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
    /// Send a failed send again, by the id `list` prints, or put dead inbound jobs back on
    /// the work queue with --inbound.
    Replay {
        #[arg(required_unless_present = "inbound", conflicts_with = "inbound")]
        id: Option<Uuid>,
        #[arg(long)]
        inbound: bool,
        /// The most dead inbound messages to put back.
        #[arg(long, default_value_t = usize::MAX)]
        limit: usize,
    },
}

pub async fn run(config: Config, action: DlqAction) -> anyhow::Result<()> {
    let store = crate::store(&config).await?;
    let out = match action {
        DlqAction::List { tenant, limit } => {
            let tenant_id = match &tenant {
                Some(slug) => Some(
                    store
                        .tenant_id(slug)
                        .await
                        .with_context(|| format!("tenant {slug:?}"))?,
                ),
                None => None,
            };
            let outbound: Vec<Value> = store
                .dead_letters(tenant_id)
                .await?
                .into_iter()
                .map(|d| {
                    json!({"id": d.id, "tenant_id": d.tenant_id, "conversation_id": d.conversation_id,
                           "channel": d.channel_kind, "status": d.status, "attempts": d.attempts,
                           "last_error": d.last_error, "created_at": d.created_at})
                })
                .collect();
            let inbound: Vec<Value> = switchboard_bus::dead_letters(&config.amqp, INBOUND, limit)
                .await
                .context("reading the inbound dead letters")?
                .iter()
                .filter(|d| tenant_id.is_none_or(|t| d.concerns(&t.to_string())))
                .map(DeadLetter::describe)
                .collect();
            json!({"outbound": outbound, "inbound": inbound})
        }
        DlqAction::Replay {
            id: Some(id),
            inbound: false,
            ..
        } => {
            let (tenant_id, conversation_id) = store.replay_dead_letter_as_admin("cli", id).await?;
            json!({"replayed": id, "tenant_id": tenant_id, "conversation_id": conversation_id})
        }
        DlqAction::Replay { limit, .. } => {
            let done = switchboard_bus::replay_dead(&config.amqp, INBOUND, limit)
                .await
                .context("replaying the inbound dead letters")?;
            json!({"replayed_messages": done.letters, "replayed_jobs": done.jobs})
        }
    };
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(())
}
