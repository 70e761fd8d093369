use std::net::SocketAddr;

use metrics_exporter_prometheus::PrometheusBuilder;
use tracing_subscriber::EnvFilter;

use crate::config::{LogConfig, LogFormat, MetricsConfig};

/// `RUST_LOG`, when set, overrides the configured filter.
pub fn init_tracing(cfg: &LogConfig) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&cfg.filter));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    let _ = match cfg.format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .try_init(),
        LogFormat::Pretty => builder.compact().try_init(),
    };
}

#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    #[error("metrics.listen {0:?} is not an address and port")]
    Address(String),
    #[error("cannot serve metrics")]
    Exporter(#[from] metrics_exporter_prometheus::BuildError),
}

/// Serves this process's Prometheus metrics on `metrics.listen`, for the worker processes
/// that have no gateway to serve `/metrics`. An empty address serves nothing. Call it
/// inside the Tokio runtime.
pub fn serve_metrics(cfg: &MetricsConfig) -> Result<(), MetricsError> {
    if cfg.listen.is_empty() {
        return Ok(());
    }
    let addr: SocketAddr = cfg
        .listen
        .parse()
        .map_err(|_| MetricsError::Address(cfg.listen.clone()))?;
    PrometheusBuilder::new()
        .with_http_listener(addr)
        .install()?;
    tracing::info!(%addr, "serving metrics");
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_worker_serves_what_it_counts() {
        let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let listen = free.local_addr().unwrap().to_string();
        drop(free);
        assert!(matches!(
            serve_metrics(&MetricsConfig {
                listen: "nowhere".into()
            }),
            Err(MetricsError::Address(_))
        ));
        serve_metrics(&MetricsConfig {
            listen: listen.clone(),
        })
        .unwrap();
        metrics::counter!("sb_sent_total", "channel" => "webchat", "result" => "ok").increment(3);
        let mut body = String::new();
        for _ in 0..50 {
            if let Ok(r) = reqwest::get(format!("http://{listen}/metrics")).await {
                body = r.text().await.unwrap();
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        assert!(
            body.contains(r#"sb_sent_total{channel="webchat",result="ok"} 3"#),
            "{body}"
        );
    }
}
