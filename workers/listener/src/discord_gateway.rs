//! Holds a Discord bot's Gateway session with serenity, and reads what was missed while no
//! one held it. Every event is published with a broker confirm before the channel's cursor
//! moves past it; after each (re)identification the channels the bot has read lately are
//! read on over REST (`GET /channels/{id}/messages?after=`) from a little before their
//! cursors, in tasks of their own so live events are not held up, and the receipts drop
//! what was delivered twice.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serenity::all::{Context, Event, GatewayIntents, Interaction, RawEventHandler};
use serenity::async_trait;
use serenity::http::HttpBuilder;
use switchboard_channels::discord;
use switchboard_channels::discord::outbound::{DiscordAdapter, read_message, snowflake};
use switchboard_core::envelope::INBOUND_MESSAGE;
use switchboard_core::{ChannelRef, Envelope, Normalized, SendError, error_chain};
use switchboard_runtime::Services;
use switchboard_store::crypto::Cipher;
use switchboard_store::{ChannelLease, ChannelRecord, DiscordCursor};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// Gateway events waiting for the publisher. When it is full, events are dropped and the
/// session starts again: its READY backfill reads them from the stored cursors, which no
/// move past a dropped event reached. Nothing waits unbounded in serenity's tasks.
const QUEUE: usize = 1024;

/// Cursor moves are written this long after the event: serenity hands each event to a task
/// of its own, so an earlier message can reach the queue a moment after a later one.
const CURSOR_LAG: Duration = Duration::from_secs(1);

/// Backfills read from this long before a cursor, which covers events that overtook each
/// other by more than `CURSOR_LAG`; the receipts drop what is read twice.
const MARGIN_MS: u64 = 30_000;

/// At most this many channels (direct messages first), and pages of 100 per channel, per
/// backfill; and this many channels read at once.
const BACKFILL_CHANNELS: usize = 500;
const BACKFILL_PAGES: usize = 10;
const BACKFILL_TASKS: usize = 64;

/// The longest wait for a rate limit inside a backfill: a longer one skips the channel.
const MAX_BACKFILL_WAIT: Duration = Duration::from_secs(60);

/// Discord's epoch, for turning a time into the smallest id of that moment.
const DISCORD_EPOCH_MS: i64 = 1_420_070_400_000;

fn snowflake_at(t: chrono::DateTime<chrono::Utc>) -> u64 {
    u64::try_from(t.timestamp_millis() - DISCORD_EPOCH_MS).unwrap_or(0) << 22
}

/// `id` moved back by the margin.
fn before(id: u64) -> u64 {
    id.saturating_sub(MARGIN_MS << 22)
}

pub struct Gateway {
    s: Services,
    lease: ChannelLease,
    channel: ChannelRef,
    config: discord::Config,
    secrets: discord::Secrets,
    inbound: discord::inbound::InboundConfig,
    adapter: Arc<DiscordAdapter>,
    /// Channels known to have been read (as stored at the session's start, and since).
    cursors: HashMap<String, DiscordCursor>,
    /// Where a channel seen for the first time is read from: a little before the newest
    /// message the previous session had read anywhere.
    floor: u64,
    /// Cursor moves not yet written, and those old enough to write.
    fresh: HashMap<String, DiscordCursor>,
    ripe: HashMap<String, DiscordCursor>,
    backfills: JoinSet<()>,
}

/// serenity's side: each event into the bounded queue, or a note that one was dropped.
struct Forward {
    tx: mpsc::Sender<Event>,
    dropped: Arc<AtomicBool>,
}

#[async_trait]
impl RawEventHandler for Forward {
    async fn raw_event(&self, _ctx: Context, ev: Event) {
        if self.tx.try_send(ev).is_err() {
            self.dropped.store(true, Ordering::Relaxed);
        }
    }
}

/// What a backfill task needs: it reads and publishes on its own, and writes the cursor as
/// each page is queued.
#[derive(Clone)]
struct Reader {
    s: Services,
    lease: ChannelLease,
    channel: ChannelRef,
    inbound: discord::inbound::InboundConfig,
    adapter: Arc<DiscordAdapter>,
}

impl Gateway {
    pub fn new(
        s: &Services,
        record: &ChannelRecord,
        cipher: &Cipher,
        lease: ChannelLease,
    ) -> Result<Self, String> {
        let (channel, config, secrets): (_, discord::Config, discord::Secrets) =
            crate::decode(record, cipher)?;
        let adapter = Arc::new(DiscordAdapter::new(
            switchboard_http::client(),
            &config.api_base_url,
            &secrets.bot_token,
        ));
        Ok(Self {
            s: s.clone(),
            lease,
            channel,
            inbound: config.inbound(),
            config,
            secrets,
            adapter,
            cursors: HashMap::new(),
            floor: 0,
            fresh: HashMap::new(),
            ripe: HashMap::new(),
            backfills: JoinSet::new(),
        })
    }

    pub async fn run(mut self, stop: CancellationToken) {
        let span = tracing::info_span!("discord", tenant_id = %self.channel.tenant_id, channel_id = %self.channel.channel_id);
        async {
            let mut backoff = Duration::from_secs(1);
            while !stop.is_cancelled() {
                match self.session(&stop).await {
                    Ok(()) => backoff = Duration::from_secs(1),
                    Err(e) => {
                        tracing::warn!(error = %e, retry_in_ms = backoff.as_millis() as u64, "Gateway session ended");
                    }
                }
                tokio::select! {
                    _ = stop.cancelled() => {}
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(60));
            }
        }
        .instrument(span)
        .await
    }

    /// The serenity client for this bot: its REST calls (the Gateway's address, the shard
    /// count) go where the channel's `api_base_url` says, with serenity's own rate limiter
    /// off, as the product's limits are kept in Redis.
    async fn client(
        &self,
        tx: mpsc::Sender<Event>,
        dropped: Arc<AtomicBool>,
    ) -> Result<serenity::Client, String> {
        use secrecy::ExposeSecret;
        let mut http =
            HttpBuilder::new(self.secrets.bot_token.expose_secret()).ratelimiter_disabled(true);
        if let Some(origin) = proxy_origin(&self.config.api_base_url) {
            http = http.proxy(origin);
        }
        let intents = GatewayIntents::GUILD_MESSAGES
            | GatewayIntents::DIRECT_MESSAGES
            | GatewayIntents::MESSAGE_CONTENT
            | GatewayIntents::GUILD_MESSAGE_REACTIONS
            | GatewayIntents::DIRECT_MESSAGE_REACTIONS;
        serenity::client::ClientBuilder::new_with_http(http.build(), intents)
            .raw_event_handler(Forward { tx, dropped })
            .await
            .map_err(|e| format!("cannot build the Discord client: {e}"))
    }

    fn reader(&self) -> Reader {
        Reader {
            s: self.s.clone(),
            lease: self.lease,
            channel: self.channel,
            inbound: self.inbound.clone(),
            adapter: self.adapter.clone(),
        }
    }

    fn cutoff(&self) -> u64 {
        let days = i64::from(self.config.backfill_days.min(3650));
        snowflake_at(chrono::Utc::now() - chrono::Duration::days(days))
    }

    /// One serenity client, from its start until it fails or the listener stops. serenity
    /// reconnects (resuming or identifying again) by itself; every READY starts a backfill.
    async fn session(&mut self, stop: &CancellationToken) -> Result<(), String> {
        let cutoff = self.cutoff();
        self.cursors = self
            .s
            .store
            .discord_cursors(self.channel.channel_id, &cutoff.to_string())
            .await
            .map_err(|e| error_chain(&e))?;
        self.floor = before(
            self.cursors
                .values()
                .map(|c| snowflake(&c.last))
                .max()
                .unwrap_or(cutoff)
                .max(cutoff),
        );
        self.fresh.clear();
        self.ripe.clear();
        let (tx, mut rx) = mpsc::channel(QUEUE);
        let dropped = Arc::new(AtomicBool::new(false));
        let mut client = self.client(tx, dropped.clone()).await?;
        let manager = client.shard_manager.clone();
        let mut running = tokio::spawn(async move { client.start_autosharded().await });
        let mut tick = tokio::time::interval(CURSOR_LAG);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let ended = loop {
            tokio::select! {
                _ = stop.cancelled() => break Ok(()),
                r = &mut running => break match r {
                    Ok(Ok(())) => Err("the Gateway client stopped".to_owned()),
                    Ok(Err(e)) => Err(format!("the Gateway client failed: {e}")),
                    Err(e) => Err(format!("the Gateway client panicked: {e}")),
                },
                ev = rx.recv() => match ev {
                    Some(ev) => if let Err(e) = self.handle(ev).await { break Err(e) },
                    None => break Err("the Gateway client dropped its queue".to_owned()),
                },
                Some(_) = self.backfills.join_next(), if !self.backfills.is_empty() => {}
                _ = tick.tick() => {
                    if dropped.load(Ordering::Relaxed) {
                        // Moves not yet written may be past a dropped event: none is
                        // written, and the next session reads from the stored cursors.
                        break Err("the event queue was full; starting again".to_owned());
                    }
                    if let Err(e) = self.flush().await { break Err(e) }
                }
            }
        };
        self.backfills.abort_all();
        manager.shutdown_all().await;
        running.abort();
        ended
    }

    /// Writes the cursor moves that have waited `CURSOR_LAG`, and lets the fresh ones age.
    async fn flush(&mut self) -> Result<(), String> {
        let ripe = std::mem::replace(&mut self.ripe, std::mem::take(&mut self.fresh));
        for (dch, cursor) in ripe {
            self.s
                .store
                .set_discord_cursor(self.channel.tenant_id, &self.lease, &dch, &cursor)
                .await
                .map_err(|e| error_chain(&e))?;
        }
        Ok(())
    }

    /// Notes that `dch` is read up to `id` (written after `CURSOR_LAG`).
    fn advance(&mut self, dch: &str, id: &str, guild: Option<String>) {
        let newer = |c: &DiscordCursor| snowflake(id) > snowflake(&c.last);
        let cursor = DiscordCursor {
            last: id.to_owned(),
            guild,
        };
        if self.cursors.get(dch).is_none_or(newer) {
            self.cursors.insert(dch.to_owned(), cursor.clone());
        }
        if self.fresh.get(dch).is_none_or(newer) {
            self.fresh.insert(dch.to_owned(), cursor);
        }
    }

    /// Reads `channels` on in tasks of their own, at most `BACKFILL_TASKS` at once.
    fn backfill(&mut self, channels: Vec<(String, DiscordCursor)>) {
        let limit = Arc::new(tokio::sync::Semaphore::new(BACKFILL_TASKS));
        for (dch, from) in channels {
            if self.backfills.len() >= BACKFILL_CHANNELS * 2 {
                tracing::warn!(
                    "too many backfills under way; a channel is left for the next session"
                );
                break;
            }
            let (reader, limit) = (self.reader(), limit.clone());
            self.backfills.spawn(
                async move {
                    let Ok(_turn) = limit.acquire().await else { return };
                    match reader.channel(&dch, from).await {
                        Ok(read) if read > 0 => tracing::info!(discord_channel = %dch, messages = read, "backfilled"),
                        Ok(_) => {}
                        Err(e) => tracing::warn!(discord_channel = %dch, error = %e, "backfill of a channel failed; the next session tries again"),
                    }
                }
                .in_current_span(),
            );
        }
    }

    async fn handle(&mut self, ev: Event) -> Result<(), String> {
        let now = chrono::Utc::now();
        let (name, data) = match ev {
            Event::Ready(r) => {
                self.inbound.bot_user_id = r.ready.user.id.to_string();
                tracing::info!(session = %r.ready.session_id, "connected to the Gateway");
                // Every channel read lately, direct messages first (a busy server channel
                // the bot is not asked in must not push customers out), newest first.
                let cutoff = self.cutoff();
                let mut channels: Vec<_> = self
                    .cursors
                    .iter()
                    .filter(|(_, c)| snowflake(&c.last) >= cutoff)
                    .map(|(k, c)| {
                        let from = DiscordCursor {
                            last: before(snowflake(&c.last)).to_string(),
                            guild: c.guild.clone(),
                        };
                        (k.clone(), from)
                    })
                    .collect();
                channels.sort_by_key(|(_, c)| {
                    (c.guild.is_some(), std::cmp::Reverse(snowflake(&c.last)))
                });
                channels.truncate(BACKFILL_CHANNELS);
                tracing::info!(channels = channels.len(), "backfill started");
                self.backfill(channels);
                return Ok(());
            }
            Event::MessageCreate(e) => {
                let m = match serde_json::to_value(&e.message)
                    .map_err(|e| e.to_string())
                    .and_then(|raw| read_message(&raw).map_err(|e| e.to_string()))
                {
                    Ok(m) => m,
                    Err(e) => {
                        metrics::counter!("sb_inbound_total", "channel" => "discord", "result" => "rejected")
                            .increment(1);
                        tracing::warn!(error = %e, "message skipped");
                        return Ok(());
                    }
                };
                // A channel never read before may hold messages sent while no one was
                // connected: it is read from a little before the newest message the last
                // session had read anywhere.
                let first_sight = !self.cursors.contains_key(&m.channel_id);
                let n = discord::inbound::normalize_message(self.channel, &self.inbound, &m, now);
                publish(&self.s, n).await?;
                self.advance(&m.channel_id, &m.id, m.guild_id.clone());
                if first_sight {
                    let from = DiscordCursor {
                        last: self.floor.to_string(),
                        guild: m.guild_id.clone(),
                    };
                    self.backfill(vec![(m.channel_id.clone(), from)]);
                }
                return Ok(());
            }
            Event::InteractionCreate(e) => {
                let Interaction::Component(c) = &e.interaction else {
                    count_ignored("interaction.other");
                    return Ok(());
                };
                let parsed =
                    serde_json::to_value(c)
                        .map_err(|e| e.to_string())
                        .and_then(|mut raw| {
                            raw["type"] = 3.into();
                            discord::inbound::parse_interaction(raw.to_string().as_bytes())
                                .map_err(|e| e.to_string())
                        });
                let i = match parsed {
                    Ok(i) => i,
                    Err(e) => {
                        tracing::warn!(error = %e, "interaction skipped");
                        return Ok(());
                    }
                };
                let n =
                    discord::inbound::normalize_interaction(self.channel, &self.inbound, &i, now);
                publish(&self.s, n).await?;
                // Queued: the press is acknowledged, within Discord's three seconds.
                if let Err(e) = self.adapter.defer_interaction(&i.id, &i.token).await {
                    tracing::warn!(error = %error_chain(&e), "the interaction was not acknowledged");
                }
                return Ok(());
            }
            Event::MessageUpdate(e) => ("MESSAGE_UPDATE", serde_json::to_value(&e)),
            Event::MessageDelete(e) => ("MESSAGE_DELETE", serde_json::to_value(e)),
            Event::ReactionAdd(e) => ("MESSAGE_REACTION_ADD", serde_json::to_value(&e.reaction)),
            Event::ReactionRemove(e) => {
                ("MESSAGE_REACTION_REMOVE", serde_json::to_value(&e.reaction))
            }
            _ => return Ok(()),
        };
        let normalized = data
            .map_err(|e| switchboard_channels::InboundError::Malformed(e.to_string()))
            .and_then(|data| {
                discord::inbound::normalize_dispatch(self.channel, &self.inbound, name, &data, now)
            });
        match normalized {
            Ok(n) => publish(&self.s, n).await,
            Err(e) => {
                metrics::counter!("sb_inbound_total", "channel" => "discord", "result" => "rejected")
                    .increment(1);
                tracing::warn!(event = name, error = %e, "event skipped");
                Ok(())
            }
        }
    }
}

/// Publishes each event with a confirm; an error ends the session (or the backfill of a
/// channel), and the next one reads from the cursor, which has not moved past it.
async fn publish(s: &Services, n: Normalized) -> Result<(), String> {
    for kind in &n.ignored {
        count_ignored(kind);
    }
    for ev in &n.events {
        let env = Envelope::new(INBOUND_MESSAGE, ev.tenant_id, ev.channel_id, ev);
        let body = serde_json::to_vec(&env).map_err(|e| e.to_string())?;
        s.publisher
            .publish(switchboard_bus::INBOUND, &body)
            .await
            .map_err(|e| format!("publishing failed: {}", error_chain(&e)))?;
        metrics::counter!("sb_inbound_total", "channel" => "discord", "result" => "queued")
            .increment(1);
        s.activity.done(1);
    }
    Ok(())
}

impl Reader {
    /// Reads `dch` after `from`, page by page, publishing each page before the cursor
    /// moves to its last message. A channel Discord refuses (deleted, the bot removed) is
    /// left; a rate limit is waited out, up to `MAX_BACKFILL_WAIT`.
    async fn channel(&self, dch: &str, from: DiscordCursor) -> Result<usize, String> {
        let mut after = from.last.clone();
        let mut read = 0;
        for _ in 0..BACKFILL_PAGES {
            let page = match self.page(dch, &after).await {
                Ok(page) => page,
                Err(SendError::Permanent { reason } | SendError::Unreachable { reason }) => {
                    tracing::info!(discord_channel = dch, reason = %reason, "channel not read");
                    return Ok(read);
                }
                Err(e) => return Err(error_chain(&e)),
            };
            let full = page.len() >= 100;
            let now = chrono::Utc::now();
            for raw in &page {
                let mut m = match read_message(raw) {
                    Ok(m) => m,
                    Err(e) => {
                        tracing::warn!(error = %e, "backfilled message skipped");
                        continue;
                    }
                };
                // The REST form has no guild_id: the cursor remembers it.
                m.guild_id = m.guild_id.or_else(|| from.guild.clone());
                let n = discord::inbound::normalize_message(self.channel, &self.inbound, &m, now);
                read += n.events.len();
                publish(&self.s, n).await?;
            }
            let Some(last) = page.last().and_then(|m| m["id"].as_str()) else {
                break;
            };
            after = last.to_owned();
            // Read in order and queued: written at once.
            self.s
                .store
                .set_discord_cursor(
                    self.channel.tenant_id,
                    &self.lease,
                    dch,
                    &DiscordCursor {
                        last: after.clone(),
                        guild: from.guild.clone(),
                    },
                )
                .await
                .map_err(|e| error_chain(&e))?;
            if !full {
                break;
            }
        }
        Ok(read)
    }

    /// One page after `after`, waiting out a rate limit Discord announces.
    async fn page(&self, dch: &str, after: &str) -> Result<Vec<serde_json::Value>, SendError> {
        for _ in 0..5 {
            match self.adapter.messages_after(dch, after).await {
                Err(SendError::RateLimited { pause }) if pause.wait <= MAX_BACKFILL_WAIT => {
                    tokio::time::sleep(pause.wait).await
                }
                other => return other,
            }
        }
        Err(SendError::Retryable {
            reason: "rate limited five times in a row".into(),
            retry_after: None,
        })
    }
}

fn count_ignored(kind: &str) {
    metrics::counter!("sb_inbound_ignored_total", "channel" => "discord", "kind" => kind.to_owned())
        .increment(1);
}

/// serenity builds its URLs on `https://discord.com`; another API base (a local fake, a
/// proxy) is given to it as the origin that replaces that.
fn proxy_origin(api_base_url: &str) -> Option<String> {
    let base = api_base_url.trim_end_matches('/');
    if base == discord::DEFAULT_API_BASE_URL.trim_end_matches('/') {
        return None;
    }
    Some(
        base.split_once("/api")
            .map_or(base, |(origin, _)| origin)
            .to_owned(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The live path reads a message as serenity's model hands it back: every documented
    /// MESSAGE_CREATE must come out of that round trip as it does read straight.
    #[test]
    fn messages_read_the_same_through_serenitys_model() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../crates/channels/tests/fixtures/discord");
        let cfg = discord::inbound::InboundConfig {
            bot_user_id: "1100000000000000001".into(),
            group_mode: Default::default(),
        };
        let ch = ChannelRef {
            tenant_id: uuid::Uuid::nil(),
            channel_id: uuid::Uuid::nil(),
        };
        let now = chrono::Utc::now();
        let mut checked = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let raw: serde_json::Value = match std::fs::read(&path)
                .ok()
                .and_then(|b| serde_json::from_slice(&b).ok())
            {
                Some(v) => v,
                None => continue,
            };
            if raw["t"] != "MESSAGE_CREATE" {
                continue;
            }
            let direct = read_message(&raw["d"]).unwrap();
            let model: serenity::all::Message = serde_json::from_value(raw["d"].clone())
                .unwrap_or_else(|e| panic!("{}: serenity: {e}", path.display()));
            let through = read_message(&serde_json::to_value(&model).unwrap()).unwrap();
            assert_eq!(
                discord::inbound::normalize_message(ch, &cfg, &through, now),
                discord::inbound::normalize_message(ch, &cfg, &direct, now),
                "{}",
                path.display()
            );
            checked += 1;
        }
        assert!(checked >= 10, "only {checked} fixtures");
    }
}
