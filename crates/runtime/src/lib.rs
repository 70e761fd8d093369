//! What every Switchboard process does first: load the layered configuration, set up
//! logging, connect to PostgreSQL, Redis and RabbitMQ, and wait for SIGTERM.

mod activity;
mod config;
pub mod fleet;
mod telemetry;

use std::sync::Arc;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use switchboard_bus::Publisher;
use switchboard_store::Store;
use tokio_util::sync::CancellationToken;

pub use activity::{Activity, Working, heartbeat};
pub use config::{
    AdminConfig, AiWorkerConfig, Config, ConfigError, DatabaseConfig, DispatcherConfig, LogConfig,
    MetricsConfig, RedisConfig, ServerConfig,
};
pub use telemetry::{MetricsError, init_tracing, serve_metrics};

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot use the database at {url}")]
    Database {
        url: String,
        #[source]
        source: switchboard_store::StoreError,
    },
    #[error("cannot reach Redis at {url}")]
    Redis {
        url: String,
        #[source]
        source: redis::RedisError,
    },
}

/// The shared connections of one process. Cheap to clone.
#[derive(Clone)]
pub struct Services {
    pub config: Arc<Config>,
    pub store: Store,
    pub redis: ConnectionManager,
    pub publisher: Arc<Publisher>,
    /// This process's work, for its heartbeat to the fleet view.
    pub activity: Arc<Activity>,
}

/// How long a Redis connection may take to open, and a command to be answered.
const REDIS_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

impl Services {
    /// Connects to Redis now and to PostgreSQL and RabbitMQ lazily, so that a database or
    /// broker outage shows as 503s and retries instead of a process that will not start.
    pub async fn connect(config: Config) -> Result<Self, StartError> {
        let store = Store::connect_lazy(&config.database.url, config.database.max_connections)
            .map_err(|source| StartError::Database {
                url: redacted(&config.database.url),
                source,
            })?;
        let redis_err = |source| StartError::Redis {
            url: redacted(&config.redis.url),
            source,
        };
        let client = redis::Client::open(config.redis.url.as_str()).map_err(redis_err)?;
        // A stalled Redis must not hang every dedup claim and rate-limit reservation: each
        // command gets an answer or an error within the response timeout.
        // The connection's own setup commands are not bounded by those timeouts, so the
        // first connection as a whole is.
        let redis_cfg = ConnectionManagerConfig::new()
            .set_connection_timeout(REDIS_TIMEOUT)
            .set_response_timeout(REDIS_TIMEOUT)
            .set_number_of_retries(3)
            .set_max_delay(1000);
        let redis = tokio::time::timeout(
            REDIS_TIMEOUT * 4,
            ConnectionManager::new_with_config(client, redis_cfg),
        )
        .await
        .map_err(|_| {
            redis_err(redis::RedisError::from((
                redis::ErrorKind::IoError,
                "Redis did not answer",
            )))
        })?
        .map_err(redis_err)?;
        let publisher = Arc::new(Publisher::new(config.amqp.clone()));
        Ok(Self {
            config: Arc::new(config),
            store,
            redis,
            publisher,
            activity: Arc::new(Activity::default()),
        })
    }
}

/// A URL without its password, fit for logs and error messages.
pub fn redacted(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{}{user}:***{}", &url[..scheme + 3], &url[at..])
        }
        _ => url.to_owned(),
    }
}

/// Fires on SIGTERM or Ctrl-C.
pub fn shutdown_signal() -> CancellationToken {
    let token = CancellationToken::new();
    let t = token.clone();
    tokio::spawn(async move {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        let term = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut s) => {
                    s.recv().await;
                }
                Err(_) => std::future::pending::<()>().await,
            }
        };
        #[cfg(not(unix))]
        let term = std::future::pending::<()>();
        tokio::select! {
            _ = ctrl_c => {}
            _ = term => {}
        }
        tracing::info!("shutting down");
        t.cancel();
    });
    token
}

#[cfg(test)]
mod tests {
    #[test]
    fn redacts_passwords() {
        assert_eq!(
            super::redacted("amqp://guest:secret@h:5672/%2f"),
            "amqp://guest:***@h:5672/%2f"
        );
        assert_eq!(
            super::redacted("redis://127.0.0.1:6379"),
            "redis://127.0.0.1:6379"
        );
    }
}
