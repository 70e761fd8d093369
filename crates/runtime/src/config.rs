use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Toml};
use serde::Deserialize;
use switchboard_ai::LlmConfig;
use switchboard_bus::BusConfig;

const EMBEDDED_DEFAULTS: &str = include_str!("../../../config/default.toml");

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub server: ServerConfig,
    pub database: DatabaseConfig,
    pub redis: RedisConfig,
    pub amqp: BusConfig,
    pub dispatcher: DispatcherConfig,
    pub ai_worker: AiWorkerConfig,
    pub llm: LlmConfig,
    pub admin: AdminConfig,
    pub security: SecurityConfig,
    pub log: LogConfig,
    pub metrics: MetricsConfig,
}

#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminConfig {
    pub api_token: String,
}

impl std::fmt::Debug for AdminConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AdminConfig { api_token: <redacted> }")
    }
}

#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecurityConfig {
    pub master_key: String,
    /// Whether a tenant's own LLM base URL may point to a private, loopback or link-local
    /// address (a model on the shop's own network); off, such URLs are refused.
    pub allow_private_llm_urls: bool,
}

impl std::fmt::Debug for SecurityConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecurityConfig")
            .field("master_key", &"<redacted>")
            .field("allow_private_llm_urls", &self.allow_private_llm_urls)
            .finish()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    pub host: String,
    pub port: u16,
    pub public_url: String,
    pub body_limit_bytes: usize,
    /// Requests a second one address may make to the public endpoints that customers and
    /// strangers reach (web-chat posts, transcripts and streams, sign-in), and the burst above that.
    pub public_rate_per_ip: u32,
    pub public_burst_per_ip: u32,
    /// The longest a request may take to be answered (an event stream's body excepted);
    /// past it the answer is 503, so a platform retries.
    pub request_timeout_secs: u64,
    /// Requests handled at once; more are answered 503 at once instead of queueing.
    pub max_concurrent_requests: usize,
    /// Event streams (web chat, operators' console) open at once from one address, and in
    /// all; more answer 429.
    pub max_streams_per_ip: usize,
    pub max_streams: usize,
    /// Reverse proxies (addresses or networks) whose `X-Forwarded-For` names the client;
    /// from anyone else the header is ignored.
    pub trusted_proxies: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseConfig {
    pub url: String,
    pub max_connections: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedisConfig {
    pub url: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DispatcherConfig {
    pub poll_interval_ms: u64,
    pub concurrency: usize,
    pub max_attempts: u32,
    pub backoff_base_ms: u64,
    pub backoff_max_ms: u64,
    /// How long a claimed send stays its dispatcher's without renewal; renewed every third
    /// of it while the send runs, so a dispatcher that dies frees its sends this soon.
    pub lease_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AiWorkerConfig {
    /// Drafts one worker makes at once. Each holds a database connection for its whole
    /// drafting transaction and takes another for the knowledge search.
    pub draft_concurrency: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {
    /// Where a worker process serves Prometheus metrics; empty serves none.
    pub listen: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    pub format: LogFormat,
    pub filter: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Pretty,
    Json,
}

#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {0}")]
pub struct ConfigError(String);

impl Config {
    /// The embedded defaults, then `<dir>/default.toml`, then `<dir>/{SWITCHBOARD_ENV}.toml`,
    /// then `SWITCHBOARD__SECTION__KEY` variables. `<dir>` is `SWITCHBOARD_CONFIG_DIR` or
    /// `./config`; missing files are skipped.
    pub fn load() -> Result<Self, ConfigError> {
        let dir = std::env::var_os("SWITCHBOARD_CONFIG_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("config"));
        let env = std::env::var("SWITCHBOARD_ENV").ok();
        Self::figment(&dir, env.as_deref()).extract().map_err(|e| {
            // figment names the key and the layer it came from; keep every error it found.
            ConfigError(
                e.into_iter()
                    .map(|e| e.to_string())
                    .collect::<Vec<_>>()
                    .join("; "),
            )
        })
    }

    fn figment(dir: &Path, env: Option<&str>) -> Figment {
        let mut files = vec![dir.join("default.toml")];
        if let Some(env) = env.filter(|e| !e.is_empty()) {
            files.push(dir.join(format!("{env}.toml")));
        }
        files
            .into_iter()
            .filter(|f| f.is_file())
            .fold(
                Figment::new().merge(Toml::string(EMBEDDED_DEFAULTS)),
                |f, file| f.merge(Toml::file_exact(file)),
            )
            .merge(Env::prefixed("SWITCHBOARD__").split("__"))
    }
}

#[cfg(test)]
#[allow(clippy::result_large_err)] // figment::Jail's closures return figment::Error
mod tests {
    use super::*;

    /// Printing the configuration (a debug log, a panic message) shows no credential.
    #[test]
    fn debug_output_holds_no_credential() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("SWITCHBOARD__LLM__API_KEY", "sk-llm-secret-0123");
            jail.set_env("SWITCHBOARD__ADMIN__API_TOKEN", "admin-secret-0123456");
            jail.set_env("SWITCHBOARD__SECURITY__MASTER_KEY", "master-secret-0123");
            let c = Config::load().map_err(|e| e.to_string())?;
            let shown = format!("{c:?}");
            for secret in [
                "sk-llm-secret-0123",
                "admin-secret-0123456",
                "master-secret-0123",
            ] {
                assert!(!shown.contains(secret), "{secret} printed");
            }
            Ok(())
        });
    }

    #[test]
    fn layers_files_then_environment() {
        figment::Jail::expect_with(|jail| {
            jail.create_dir("config")?;
            jail.create_file("config/ci.toml", "[server]\nport = 9000\n")?;
            jail.set_env("SWITCHBOARD_ENV", "ci");
            jail.set_env("SWITCHBOARD__DATABASE__URL", "postgres://x@h/db");
            let c = Config::load().map_err(|e| e.to_string())?;
            assert_eq!(c.server.port, 9000);
            assert_eq!(c.database.url, "postgres://x@h/db");
            assert_eq!(c.amqp.namespace, "sb");
            Ok(())
        });
    }

    #[test]
    fn unknown_keys_are_named() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("SWITCHBOARD__DATABASE__URLL", "postgres://typo");
            let err = Config::load().map(|_| ()).map_err(|e| e.to_string());
            assert!(matches!(&err, Err(e) if e.contains("urll")), "{err:?}");
            jail.clear_env();
            jail.create_dir("config")?;
            jail.create_file("config/default.toml", "[servr]\nport = 1\n")?;
            let err = Config::load().map(|_| ()).map_err(|e| e.to_string());
            assert!(matches!(&err, Err(e) if e.contains("servr")), "{err:?}");
            Ok(())
        });
    }
}
