//! The listener as its own process: `listener`. Run one per deployment: each long-polled
//! bot must have exactly one poller.

use switchboard_runtime::{Config, Services, init_tracing, serve_metrics, shutdown_signal};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = Config::load()?;
    init_tracing(&config.log);
    serve_metrics(&config.metrics)?;
    let services = Services::connect(config).await?;
    switchboard_listener::run(services, shutdown_signal()).await;
    Ok(())
}
