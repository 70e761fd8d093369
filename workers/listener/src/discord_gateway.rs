//! Holds a Discord bot's Gateway session with serenity, and reads what was missed while no
//! one held it. Every event is published with a broker confirm before the channel's cursor
//! moves past it; after each (re)identification the channels the bot has read lately are
//! read on from their cursors over REST (`GET /channels/{id}/messages?after=`), and the
//! receipts drop what the Gateway had already delivered.

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
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// Gateway events waiting for the publisher. When it is full, events are dropped and a
/// backfill reads them again: nothing waits unbounded in serenity's dispatch tasks.
const QUEUE: usize = 1024;

/// Cursor moves wait this long: serenity hands each event to its own task, so an earlier
/// message may reach the queue a moment after a later one, and a cursor moved at once
/// past the later one could skip the earlier one after a crash.
const CURSOR_LAG: Duration = Duration::from_secs(1);

/// At most this many channels, and pages of 100 per channel, per backfill.
const BACKFILL_CHANNELS: usize = 500;
const BACKFILL_PAGES: usize = 10;

/// Discord's epoch, for turning a time into the smallest id of that moment.
const DISCORD_EPOCH_MS: i64 = 1_420_070_400_000;

fn snowflake_at(t: chrono::DateTime<chrono::Utc>) -> u64 {
    u64::try_from(t.timestamp_millis() - DISCORD_EPOCH_MS).unwrap_or(0) << 22
}

pub struct Gateway {
    s: Services,
    lease: ChannelLease,
    channel: ChannelRef,
    config: discord::Config,
    secrets: discord::Secrets,
    inbound: discord::inbound::InboundConfig,
    adapter: DiscordAdapter,
    /// What is known of each Discord channel's reading, as stored and as moved since.
    cursors: HashMap<String, DiscordCursor>,
    /// Cursor moves not yet written, and those old enough to write.
    fresh: HashMap<String, DiscordCursor>,
    ripe: HashMap<String, DiscordCursor>,
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

impl Gateway {
    pub fn new(
        s: &Services,
        record: &ChannelRecord,
        cipher: &Cipher,
        lease: ChannelLease,
    ) -> Result<Self, String> {
        let (channel, config, secrets): (_, discord::Config, discord::Secrets) =
            crate::decode(record, cipher)?;
        let adapter = DiscordAdapter::new(
            switchboard_http::client(),
            &config.api_base_url,
            &secrets.bot_token,
        );
        Ok(Self {
            s: s.clone(),
            lease,
            channel,
            inbound: config.inbound(),
            config,
            secrets,
            adapter,
            cursors: HashMap::new(),
            fresh: HashMap::new(),
            ripe: HashMap::new(),
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

    /// One serenity client, from its start until it fails or the listener stops. serenity
    /// reconnects (resuming or identifying again) by itself; every READY starts a backfill.
    async fn session(&mut self, stop: &CancellationToken) -> Result<(), String> {
        let (tx, mut rx) = mpsc::channel(QUEUE);
        let dropped = Arc::new(AtomicBool::new(false));
        let mut client = self.client(tx, dropped.clone()).await?;
        let manager = client.shard_manager.clone();
        let mut running = tokio::spawn(async move { client.start_autosharded().await });
        self.cursors = self
            .s
            .store
            .discord_cursors(self.channel.channel_id)
            .await
            .map_err(|e| error_chain(&e))?;
        let mut tick = tokio::time::interval(CURSOR_LAG);
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
                _ = tick.tick() => {
                    if dropped.swap(false, Ordering::Relaxed) {
                        // Events were dropped: moves not yet written may be past them.
                        tracing::warn!("the event queue was full; reading the channels again");
                        self.fresh.clear();
                        self.ripe.clear();
                        if let Err(e) = self.backfill().await { break Err(e) }
                    }
                    if let Err(e) = self.flush().await { break Err(e) }
                }
            }
        };
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

    async fn handle(&mut self, ev: Event) -> Result<(), String> {
        let now = chrono::Utc::now();
        let (name, data) = match ev {
            Event::Ready(r) => {
                self.inbound.bot_user_id = r.ready.user.id.to_string();
                tracing::info!(session = %r.ready.session_id, "connected to the Gateway");
                return self.backfill().await;
            }
            Event::MessageCreate(e) => {
                let raw = serde_json::to_value(&e.message).map_err(|e| e.to_string())?;
                let m = read_message(&raw).map_err(|e| e.to_string())?;
                // A channel never read before may hold messages sent while no one was
                // connected: it is read from the newest message seen anywhere before.
                let first_sight =
                    (!self.cursors.contains_key(&m.channel_id)).then(|| DiscordCursor {
                        last: self.newest_seen().to_string(),
                        guild: m.guild_id.clone(),
                    });
                let n = discord::inbound::normalize_message(self.channel, &self.inbound, &m, now);
                self.publish(n).await?;
                self.advance(&m.channel_id, &m.id, m.guild_id.clone());
                if let Some(from) = first_sight {
                    self.backfill_channel(&m.channel_id, from).await?;
                }
                return Ok(());
            }
            Event::InteractionCreate(e) => {
                let Interaction::Component(c) = &e.interaction else {
                    count_ignored("interaction.other");
                    return Ok(());
                };
                let mut raw = serde_json::to_value(c).map_err(|e| e.to_string())?;
                raw["type"] = 3.into();
                let i = discord::inbound::parse_interaction(raw.to_string().as_bytes())
                    .map_err(|e| e.to_string())?;
                let n =
                    discord::inbound::normalize_interaction(self.channel, &self.inbound, &i, now);
                self.publish(n).await?;
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
        let data = data.map_err(|e| e.to_string())?;
        match discord::inbound::normalize_dispatch(self.channel, &self.inbound, name, &data, now) {
            Ok(n) => self.publish(n).await,
            Err(e) => {
                metrics::counter!("sb_inbound_total", "channel" => "discord", "result" => "rejected")
                    .increment(1);
                tracing::warn!(event = name, error = %e, "event skipped");
                Ok(())
            }
        }
    }

    /// Publishes each event with a confirm; an error ends the session, and the backfill of
    /// the next one reads from the cursor, which has not moved past it.
    async fn publish(&self, n: Normalized) -> Result<(), String> {
        for kind in &n.ignored {
            count_ignored(kind);
        }
        for ev in &n.events {
            let env = Envelope::new(INBOUND_MESSAGE, ev.tenant_id, ev.channel_id, ev);
            let body = serde_json::to_vec(&env).map_err(|e| e.to_string())?;
            self.s
                .publisher
                .publish(switchboard_bus::INBOUND, &body)
                .await
                .map_err(|e| format!("publishing failed: {}", error_chain(&e)))?;
            metrics::counter!("sb_inbound_total", "channel" => "discord", "result" => "queued")
                .increment(1);
        }
        Ok(())
    }

    fn cutoff(&self) -> u64 {
        snowflake_at(
            chrono::Utc::now() - chrono::Duration::days(i64::from(self.config.backfill_days)),
        )
    }

    /// The newest message id read in any channel, or the start of the backfill window.
    fn newest_seen(&self) -> u64 {
        let cutoff = self.cutoff();
        self.cursors
            .values()
            .map(|c| snowflake(&c.last))
            .max()
            .unwrap_or(cutoff)
            .max(cutoff)
    }

    /// Reads on from the cursors of every channel read in the last `backfill_days`, the
    /// most recently active first. Cursors move as each page is queued.
    async fn backfill(&mut self) -> Result<(), String> {
        let cutoff = self.cutoff();
        let mut channels: Vec<_> = self
            .cursors
            .iter()
            .filter(|(_, c)| snowflake(&c.last) >= cutoff)
            .map(|(k, c)| (k.clone(), c.clone()))
            .collect();
        channels.sort_by_key(|(_, c)| std::cmp::Reverse(snowflake(&c.last)));
        channels.truncate(BACKFILL_CHANNELS);
        let (count, mut read) = (channels.len(), 0);
        for (dch, cursor) in channels {
            read += self.backfill_channel(&dch, cursor).await?;
        }
        tracing::info!(channels = count, messages = read, "backfill done");
        Ok(())
    }

    async fn backfill_channel(
        &mut self,
        dch: &str,
        cursor: DiscordCursor,
    ) -> Result<usize, String> {
        let mut after = cursor.last;
        let mut read = 0;
        for _ in 0..BACKFILL_PAGES {
            let page = match self.page(dch, &after).await {
                Ok(page) => page,
                Err(SendError::Permanent { reason } | SendError::Unreachable { reason }) => {
                    // Deleted, or the bot was removed: nothing to read there.
                    tracing::info!(discord_channel = dch, reason = %reason, "channel not read");
                    return Ok(read);
                }
                Err(e) => return Err(format!("backfill: {}", error_chain(&e))),
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
                m.guild_id = m.guild_id.or_else(|| cursor.guild.clone());
                let n = discord::inbound::normalize_message(self.channel, &self.inbound, &m, now);
                read += n.events.len();
                self.publish(n).await?;
                after = m.id.clone();
            }
            if let Some(last) = page.last().and_then(|m| m["id"].as_str()) {
                let moved = DiscordCursor {
                    last: last.to_owned(),
                    guild: cursor.guild.clone(),
                };
                // Read in order: written at once, with nothing earlier still in flight.
                self.s
                    .store
                    .set_discord_cursor(self.channel.tenant_id, &self.lease, dch, &moved)
                    .await
                    .map_err(|e| error_chain(&e))?;
                self.advance(dch, last, cursor.guild.clone());
            }
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
                Err(SendError::RateLimited { pause }) => tokio::time::sleep(pause.wait).await,
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
