//! Pulls messages from platforms that do not push them: Telegram bots in long-polling mode
//! (`getUpdates`) and email mailboxes over IMAP. The offset or cursor advances only after
//! what it covers is durably queued, so a restart loses nothing and repeats nothing.

mod imap_poll;
mod telegram_poll;

use std::collections::HashMap;
use std::time::Duration;

use switchboard_core::{ChannelKind, error_chain};
use switchboard_runtime::Services;
use switchboard_store::crypto::Cipher;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// How often the set of polled channels is refreshed.
const RESCAN: Duration = Duration::from_secs(2);

pub async fn run(s: Services, shutdown: CancellationToken) {
    let mut pollers: HashMap<Uuid, (CancellationToken, JoinHandle<()>)> = HashMap::new();
    while !shutdown.is_cancelled() {
        match s.store.channels(None).await {
            Ok(channels) => {
                let wanted: HashMap<Uuid, _> = channels
                    .into_iter()
                    .filter(|c| c.is_active)
                    .filter(|c| match c.kind {
                        ChannelKind::Telegram => {
                            c.config.get("long_polling").and_then(|v| v.as_bool()) == Some(true)
                        }
                        ChannelKind::Email => true,
                        _ => false,
                    })
                    .map(|c| (c.id, c))
                    .collect();
                pollers.retain(|id, (stop, task)| {
                    let keep = wanted.contains_key(id) && !task.is_finished();
                    if !keep {
                        stop.cancel();
                    }
                    keep
                });
                let cipher = Cipher::from_base64(&s.config.security.master_key).ok();
                for (id, record) in wanted {
                    if pollers.contains_key(&id) {
                        continue;
                    }
                    let Some(cipher) = &cipher else {
                        tracing::error!(channel_id = %id, "no master key: cannot poll this channel");
                        continue;
                    };
                    let stop = shutdown.child_token();
                    let started = match record.kind {
                        ChannelKind::Email => imap_poll::Poller::new(&s, &record, cipher)
                            .map(|p| tokio::spawn(p.run(stop.clone()))),
                        _ => telegram_poll::Poller::new(&s, &record, cipher)
                            .map(|p| tokio::spawn(p.run(stop.clone()))),
                    };
                    match started {
                        Ok(task) => {
                            pollers.insert(id, (stop, task));
                        }
                        Err(e) => {
                            tracing::error!(channel_id = %id, error = %e, "cannot poll this channel")
                        }
                    }
                }
            }
            Err(e) => tracing::warn!(error = %error_chain(&e), "cannot list channels"),
        }
        tokio::select! {
            _ = shutdown.cancelled() => {}
            _ = tokio::time::sleep(RESCAN) => {}
        }
    }
    for (_, (stop, task)) in pollers {
        stop.cancel();
        let _ = task.await;
    }
}

/// A polled channel's ids, settings and decrypted credentials, in its module's types.
fn decode<C: serde::de::DeserializeOwned, S: serde::de::DeserializeOwned>(
    record: &switchboard_store::ChannelRecord,
    cipher: &Cipher,
) -> Result<(switchboard_core::ChannelRef, C, S), String> {
    let channel = switchboard_core::ChannelRef {
        tenant_id: record.tenant_id,
        channel_id: record.id,
    };
    let config = serde_json::from_value(record.config.clone()).map_err(|e| e.to_string())?;
    let secrets = serde_json::from_value(record.secrets(cipher).map_err(|e| e.to_string())?)
        .map_err(|e| e.to_string())?;
    Ok((channel, config, secrets))
}
