//! Everything that speaks SQL or Redis: repositories over PostgreSQL (sqlx), the migrations,
//! the outbox, and the Redis helpers (dedup fast path, live event fan-out).

mod accounts;
mod actions;
mod api_tokens;
mod channels;
pub mod crypto;
mod drafts;
mod error;
pub mod fleet;
mod inbound;
mod inbox;
mod knowledge;
mod leads;
mod leases;
mod live;
mod notify;
mod outbox;
mod ratelimit;
mod schedule;
mod seed;
mod settings;
mod shop_data;
mod shops;
mod supersede;
mod tenants;
mod transcript;
mod users;

use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, PgPool};

pub use accounts::{Account, AccountActor, AccountChange};
pub use actions::{Approval, ConversationAction, ConversationLock, OperatorSend, SuggestionRecord};
pub use api_tokens::{ApiToken, PREFIX as API_TOKEN_PREFIX};
pub use channels::{ChannelRecord, DiscordCursor};
pub use drafts::{Burst, DraftSnapshot, DraftTx, NewSuggestion, Quiet};
pub use error::StoreError;
pub use inbound::{ConsentWord, StoredInbound};
pub use inbox::{
    ConversationView, DeadLetterView, EscalationView, InboxFilter, MessageView, SuggestionView,
};
pub use leads::LeadRow;
pub use leases::{ChannelLease, HeldLease};
pub use live::{Dedup, DedupClaim, RedisLiveFeed, subscribe_live};
pub use notify::{Notification, NotificationClaim, OperatorChat, Swept};
pub use outbox::{ChannelInfo, Claim, LeaseKeeper, OutboxItem};
pub use ratelimit::SharedRateLimiter;
pub use schedule::DueDraft;
pub use seed::DEMO_SLUG;
pub use settings::{
    ConversationSettings, InvalidSettingsDoc, LlmSettingsDoc, OperatorSettings, ProfileSettings,
    SettingsDoc, WebchatSettings, Write,
};
pub use shop_data::{
    Doc, DocSummary, DocsToRemove, ImportReport, ProductInput, ProductRecord, Upserted,
};
pub use shops::{NewTenant, TenantRecord};
pub(crate) use supersede::supersede_waiting;
pub use tenants::{LlmOverrides, TenantChannel, TenantSettings, WidgetPage};
pub use transcript::{Page, TranscriptEntry};
pub use users::{ChatPlatform, Login, MAX_FAILED_LOGINS, NewSession, Role, Session, User};

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations");

/// The PostgreSQL side of the store. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    pool: PgPool,
}

impl Store {
    /// Connects lazily: a database that is down shows up as errors (503s), not as a
    /// process that cannot start.
    pub fn connect_lazy(url: &str, max_connections: u32) -> Result<Self> {
        let options: PgConnectOptions = url.parse()?;
        // No statement (a lock wait included) runs, and no transaction idles, without end:
        // a stuck one is cut off and its worker retries, rather than holding rows for good.
        let options = options
            .log_statements(tracing::log::LevelFilter::Trace)
            .options([
                ("statement_timeout", "30s"),
                ("idle_in_transaction_session_timeout", "60s"),
            ]);
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(3))
            .connect_lazy_with(options);
        Ok(Self { pool })
    }

    /// Creates the database if it does not exist yet, then applies every migration.
    /// Safe to run from many processes at once: sqlx serialises them with an advisory lock.
    pub async fn migrate(url: &str) -> Result<()> {
        use sqlx::migrate::MigrateDatabase;
        if !sqlx::Postgres::database_exists(url).await? {
            // Another process may win the race; that is fine.
            if let Err(e) = sqlx::Postgres::create_database(url).await
                && !sqlx::Postgres::database_exists(url).await?
            {
                return Err(e.into());
            }
        }
        let pool = PgPoolOptions::new().max_connections(1).connect(url).await?;
        MIGRATOR.run(&pool).await?;
        pool.close().await;
        Ok(())
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }
}
