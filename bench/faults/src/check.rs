//! The verdict, from the database and what the fakes received, once the system has settled.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use chrono::{DateTime, Utc};
use sqlx::PgPool;

use crate::customers::{Channel, Customer, Kind, Received};

/// A wall-clock time as an `Instant` of this process, for comparing the database's
/// timestamps with what the fakes saw.
#[derive(Clone, Copy)]
pub struct Clock {
    pub instant: Instant,
    pub wall: SystemTime,
}

impl Clock {
    pub fn now() -> Self {
        Self {
            instant: Instant::now(),
            wall: SystemTime::now(),
        }
    }

    fn at(&self, t: DateTime<Utc>) -> Instant {
        let t: SystemTime = t.into();
        match t.duration_since(self.wall) {
            Ok(d) => self.instant + d,
            Err(e) => self
                .instant
                .checked_sub(e.duration())
                .unwrap_or(self.instant),
        }
    }
}

#[derive(Default, Debug)]
pub struct Verdict {
    pub messages: usize,
    pub stored: usize,
    /// Messages stored more than once.
    pub stored_twice: usize,
    /// Messages never stored.
    pub lost: usize,
    /// Customers who asked and got neither a reply nor an operator.
    pub unanswered: usize,
    /// Customers whose conversation went to an operator.
    pub escalated: usize,
    pub replies: usize,
    /// The same reply recorded twice: a broken guarantee.
    pub duplicates: usize,
    /// The same reply received twice by a platform though recorded once: the send window
    /// (a process killed after the platform took a message and before it was recorded).
    pub window_duplicates: usize,
    /// The most send-window duplicates the kills allow: each killed dispatcher may have had
    /// one send of each of its send loops under way.
    pub window_bound: usize,
    pub after_stop: usize,
    /// Automatic replies sent after an operator took over.
    pub while_held: usize,
    /// Work left behind: outbox rows not sent, drafts waiting, dead letters.
    pub left_over: Vec<String>,
    pub longest: Duration,
    pub p50: Duration,
    pub p99: Duration,
}

impl Verdict {
    pub fn ok(&self) -> bool {
        self.window_duplicates <= self.window_bound
            && self.stored_twice == 0
            && self.lost == 0
            && self.unanswered == 0
            && self.duplicates == 0
            && self.after_stop == 0
            && self.while_held == 0
            && self.left_over.is_empty()
    }
}

struct Row {
    role: String,
    content: String,
    created_at: DateTime<Utc>,
}

const CONFIRMATION: &str = "You have been unsubscribed";

pub async fn verdict(
    pool: &PgPool,
    customers: &[Arc<Customer>],
    received: Received,
    clock: Clock,
) -> anyhow::Result<Verdict> {
    let rows: Vec<(String, String, String, String, DateTime<Utc>)> = sqlx::query_as(
        "SELECT ch.kind, lower(cu.external_id), m.role, m.content, m.created_at
         FROM messages m JOIN conversations c ON c.id = m.conversation_id
         JOIN customers cu ON cu.id = c.customer_id JOIN channels ch ON ch.id = m.channel_id
         WHERE m.delivery_status IS DISTINCT FROM 'failed'
         ORDER BY m.created_at",
    )
    .fetch_all(pool)
    .await?;
    let mut by_customer: HashMap<(String, String), Vec<Row>> = HashMap::new();
    for (channel, customer, role, content, created_at) in rows {
        by_customer
            .entry((channel, customer))
            .or_default()
            .push(Row {
                role,
                content,
                created_at,
            });
    }
    let escalated: HashMap<(String, String), DateTime<Utc>> = sqlx::query_as(
        "SELECT ch.kind, lower(cu.external_id), min(e.created_at)
         FROM escalation_events e JOIN conversations c ON c.id = e.conversation_id
         JOIN customers cu ON cu.id = c.customer_id JOIN channels ch ON ch.id = c.channel_id
         GROUP BY 1, 2",
    )
    .fetch_all(pool)
    .await?
    .into_iter()
    .map(|(k, c, t): (String, String, DateTime<Utc>)| ((k, c), t))
    .collect();
    // Automatic replies that went out after an operator took the conversation over. A
    // draft an operator approved before the takeover is that operator's decision, and goes
    // out whoever takes over later (only an opt-out stops it), so it is not counted; one
    // approved after the takeover is (the bench's operator approves whatever waits). A
    // holding or night reply queued before the takeover answers that earlier decision and,
    // by design, only an opt-out stops it (a run once saw one leave 6 ms after a takeover).
    let while_held: HashMap<(String, String), i64> = sqlx::query_as(
        "WITH held AS (SELECT conversation_id, min(created_at) AS at FROM human_actions
                       WHERE action = 'takeover' GROUP BY 1)
         SELECT ch.kind, lower(cu.external_id), count(*)
         FROM outbox o JOIN held ON held.conversation_id = o.conversation_id
         JOIN conversations c ON c.id = o.conversation_id
         JOIN customers cu ON cu.id = c.customer_id JOIN channels ch ON ch.id = c.channel_id
         WHERE o.status = 'sent' AND o.sent_at > held.at
           AND NOT EXISTS (SELECT 1 FROM human_actions a WHERE a.suggestion_id = o.suggestion_id
                           AND a.action IN ('approve', 'edit') AND a.created_at < held.at)
           AND o.role <> 'operator'
           AND NOT (o.suggestion_id IS NULL AND o.created_at < held.at
                    AND (o.idempotency_key LIKE 'holding:%' OR o.idempotency_key LIKE 'night:%'))
         GROUP BY 1, 2",
    )
    .fetch_all(pool)
    .await?
    .into_iter()
    .map(|(k, c, n): (String, String, i64)| ((k, c), n))
    .collect();
    let mut at_platform: HashMap<String, Vec<(String, Instant)>> = HashMap::new();
    for (customer, text, at) in received {
        at_platform
            .entry(customer.to_lowercase())
            .or_default()
            .push((text, at));
    }

    let mut v = Verdict::default();
    let mut delays = Vec::new();
    for c in customers {
        let key = (c.channel.kind().to_owned(), c.external.to_lowercase());
        let sent = c.sent.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let empty = Vec::new();
        let rows = by_customer.get(&key).unwrap_or(&empty);
        v.messages += sent.len();
        // Stored exactly once: each message the customer sent is there once.
        let theirs: Vec<&Row> = rows.iter().filter(|r| r.role == "customer").collect();
        for s in &sent {
            let n = theirs.iter().filter(|r| r.content.trim() == s.text).count();
            // The web chat and Telegram customers here never send the same text twice.
            match n {
                0 => v.lost += 1,
                1 => v.stored += 1,
                _ => {
                    v.stored += 1;
                    v.stored_twice += n - 1;
                }
            }
        }
        let recorded: Vec<&Row> = rows.iter().filter(|r| r.role != "customer").collect();
        // What the customer received: the platform's log, or for the web chat (whose
        // "platform" is our own transcript) the recorded messages.
        let replies: Vec<(String, Instant)> = if c.channel == Channel::Webchat {
            recorded
                .iter()
                .map(|r| (r.content.clone(), clock.at(r.created_at)))
                .collect()
        } else {
            at_platform
                .get(&c.external.to_lowercase())
                .cloned()
                .unwrap_or_default()
        };
        v.replies += replies.len();
        let mut distinct: Vec<&str> = replies.iter().map(|(t, _)| t.as_str()).collect();
        distinct.sort_unstable();
        distinct.dedup();
        let mut texts: Vec<&str> = recorded.iter().map(|r| r.content.as_str()).collect();
        texts.sort_unstable();
        let recorded_n = texts.len();
        texts.dedup();
        let logic = recorded_n - texts.len();
        let at_customer = replies.len() - distinct.len();
        v.duplicates += logic;
        v.window_duplicates += at_customer.saturating_sub(logic);

        let escalated_at = escalated.get(&key).map(|t| clock.at(*t));
        v.escalated += usize::from(escalated_at.is_some());
        let first_reply = replies.iter().map(|(_, at)| *at).min();
        match c.kind {
            Kind::Plain => match (first_reply, escalated_at) {
                (None, None) => v.unanswered += 1,
                (reply, escalation) => {
                    let answered = reply.into_iter().chain(escalation).min();
                    if let (Some(t), Some(s)) = (answered, sent.first()) {
                        delays.push(t.saturating_duration_since(s.first_attempt));
                    }
                }
            },
            Kind::Stop => {
                let stop_stored = theirs
                    .iter()
                    .find(|r| r.content.trim() == crate::customers::STOP)
                    .map(|r| clock.at(r.created_at));
                if let Some(stop) = stop_stored {
                    v.after_stop += replies
                        .iter()
                        .filter(|(t, at)| *at > stop && !t.starts_with(CONFIRMATION))
                        .count();
                }
            }
            Kind::Held => {
                v.while_held += while_held.get(&key).copied().unwrap_or(0) as usize;
            }
        }
    }

    let left: Vec<(String, i64)> = sqlx::query_as(
        "SELECT 'outbox ' || status, count(*) FROM outbox WHERE status IN ('pending', 'failed', 'dead') GROUP BY status
         UNION ALL SELECT 'drafts due', count(*) FROM pending_drafts HAVING count(*) > 0
         UNION ALL SELECT 'suggestions ' || status, count(*) FROM ai_suggestions
                   WHERE status IN ('pending', 'queued') GROUP BY status
         UNION ALL SELECT 'inbound jobs not handled', count(*) FROM inbound_receipts
                   WHERE handled = 0 HAVING count(*) > 0",
    )
    .fetch_all(pool)
    .await?;
    v.left_over = left
        .into_iter()
        .map(|(what, n)| format!("{what}: {n}"))
        .collect();

    delays.sort_unstable();
    let pick = |q: f64| {
        delays
            .get(((delays.len() as f64 - 1.0) * q).round().max(0.0) as usize)
            .copied()
            .unwrap_or_default()
    };
    v.longest = delays.last().copied().unwrap_or_default();
    v.p50 = pick(0.5);
    v.p99 = pick(0.99);
    Ok(v)
}
