//! Pulls messages from platforms that do not push them: Telegram bots in long-polling mode
//! (`getUpdates`), email mailboxes over IMAP, and Discord bots' Gateway sessions. The offset or cursor advances only after
//! what it covers is durably queued, so a restart loses nothing and repeats nothing.
//!
//! Any number of listeners may run: each channel is read by the one holding its lease
//! (`channel_leases`), and the others stand by to take it over once it lapses.

mod discord_gateway;
mod imap_poll;
mod telegram_poll;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use switchboard_core::{ChannelKind, error_chain};
use switchboard_runtime::Services;
use switchboard_store::crypto::Cipher;
use switchboard_store::{ChannelLease, ChannelRecord};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;
use uuid::Uuid;

/// How often the set of polled channels is refreshed, and a standby asks for a lease.
const RESCAN: Duration = Duration::from_secs(2);

/// How long a lease lasts unless renewed: a standby takes over a dead holder's channel
/// within this and one rescan.
const LEASE_TTL: Duration = Duration::from_secs(9);

/// How often a holder renews its leases; two renewals may fail before one lapses.
const RENEW_EVERY: Duration = Duration::from_secs(3);

pub async fn run(s: Services, shutdown: CancellationToken) {
    // Who this listener is to the lease table: a fresh id per run, so a restarted process
    // never mistakes its predecessor's lease for its own.
    let holder = Uuid::new_v4();
    tracing::info!(%holder, "listener started");
    let mut holders: HashMap<Uuid, (CancellationToken, JoinHandle<()>)> = HashMap::new();
    while !shutdown.is_cancelled() {
        match s.store.channels(None).await {
            Ok(channels) => {
                let wanted: HashMap<Uuid, _> = channels
                    .into_iter()
                    .filter(|c| c.is_active && is_listened(c))
                    .map(|c| (c.id, c))
                    .collect();
                holders.retain(|id, (stop, task)| {
                    let keep = wanted.contains_key(id) && !task.is_finished();
                    if !keep {
                        stop.cancel();
                    }
                    keep
                });
                let cipher = Cipher::from_base64(&s.config.security.master_key).ok();
                for (id, record) in wanted {
                    if holders.contains_key(&id) {
                        continue;
                    }
                    let Some(cipher) = &cipher else {
                        tracing::error!(channel_id = %id, "no master key: cannot poll this channel");
                        continue;
                    };
                    let stop = shutdown.child_token();
                    let span = tracing::info_span!("channel", tenant_id = %record.tenant_id, channel_id = %id);
                    let task = tokio::spawn(
                        hold(s.clone(), record, cipher.clone(), holder, stop.clone())
                            .instrument(span),
                    );
                    holders.insert(id, (stop, task));
                }
            }
            Err(e) => tracing::warn!(error = %error_chain(&e), "cannot list channels"),
        }
        tokio::select! {
            _ = shutdown.cancelled() => {}
            _ = tokio::time::sleep(RESCAN) => {}
        }
    }
    for (_, (stop, task)) in holders {
        stop.cancel();
        let _ = task.await;
    }
}

/// Channels whose messages a listener fetches, rather than a webhook receiving them.
fn is_listened(c: &ChannelRecord) -> bool {
    match c.kind {
        ChannelKind::Telegram => {
            c.config.get("long_polling").and_then(|v| v.as_bool()) == Some(true)
        }
        ChannelKind::Email | ChannelKind::Discord => true,
        _ => false,
    }
}

/// Waits for the channel's lease, reads the channel while the lease is renewed, and gives
/// it back on shutdown. A lease lost (another listener took it after a pause, or the
/// database could not confirm it in time) stops the poller at once and the wait begins
/// again.
async fn hold(
    s: Services,
    record: ChannelRecord,
    cipher: Cipher,
    holder: Uuid,
    stop: CancellationToken,
) {
    while !stop.is_cancelled() {
        let lease = match s
            .store
            .acquire_channel_lease(record.id, holder, LEASE_TTL)
            .await
        {
            Ok(Some(lease)) => lease,
            Ok(None) => {
                tokio::select! {
                    _ = stop.cancelled() => {}
                    _ = tokio::time::sleep(RESCAN) => {}
                }
                continue;
            }
            Err(e) => {
                tracing::warn!(error = %error_chain(&e), "cannot ask for the channel's lease");
                tokio::select! {
                    _ = stop.cancelled() => {}
                    _ = tokio::time::sleep(RESCAN) => {}
                }
                continue;
            }
        };
        tracing::info!(fence = lease.fence, "took the channel's lease");
        let polling = stop.child_token();
        let task = match start(&s, &record, &cipher, lease, polling.clone()) {
            Ok(task) => task,
            Err(e) => {
                tracing::error!(error = %e, "cannot poll this channel");
                release(&s, &lease).await;
                return;
            }
        };
        s.activity.hold(record.id, true);
        let kept = keep(&s, &lease, &polling, task).await;
        s.activity.hold(record.id, false);
        if kept {
            release(&s, &lease).await;
            // The poller ended on its own or the listener stops: the run loop decides.
            return;
        }
        tracing::warn!(fence = lease.fence, "lost the channel's lease; standing by");
    }
}

/// Renews `lease` while `task` polls; true when it ended with the lease still held
/// (shutdown, or the poller stopped), false when the lease was lost and the poller stopped.
async fn keep(
    s: &Services,
    lease: &ChannelLease,
    polling: &CancellationToken,
    mut task: JoinHandle<()>,
) -> bool {
    // Unconfirmed for two thirds of its life, the lease may soon go to a standby: this
    // holder stops first rather than read alongside it, however the renewals fail (an
    // error, or no answer at all).
    let mut deadline = Instant::now() + LEASE_TTL * 2 / 3;
    let kept = loop {
        tokio::select! {
            _ = &mut task => return true,
            _ = polling.cancelled() => break true,
            _ = tokio::time::sleep_until(deadline.into()) => {
                tracing::warn!("the channel's lease went unconfirmed too long");
                break false;
            }
            _ = tokio::time::sleep(RENEW_EVERY) => {}
        }
        match tokio::time::timeout(RENEW_EVERY, s.store.renew_channel_lease(lease, LEASE_TTL)).await
        {
            Ok(Ok(true)) => deadline = Instant::now() + LEASE_TTL * 2 / 3,
            Ok(Ok(false)) => break false,
            Ok(Err(e)) => {
                tracing::warn!(error = %error_chain(&e), "cannot renew the channel's lease yet")
            }
            Err(_) => tracing::warn!("renewing the channel's lease got no answer"),
        }
    };
    polling.cancel();
    let _ = task.await;
    kept
}

async fn release(s: &Services, lease: &ChannelLease) {
    if let Err(e) = s.store.release_channel_lease(lease).await {
        tracing::warn!(error = %error_chain(&e), "cannot give the channel's lease back; it lapses");
    }
}

fn start(
    s: &Services,
    record: &ChannelRecord,
    cipher: &Cipher,
    lease: ChannelLease,
    stop: CancellationToken,
) -> Result<JoinHandle<()>, String> {
    Ok(match record.kind {
        ChannelKind::Email => {
            tokio::spawn(imap_poll::Poller::new(s, record, cipher, lease)?.run(stop))
        }
        ChannelKind::Discord => {
            tokio::spawn(discord_gateway::Gateway::new(s, record, cipher, lease)?.run(stop))
        }
        _ => tokio::spawn(telegram_poll::Poller::new(s, record, cipher, lease)?.run(stop)),
    })
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
