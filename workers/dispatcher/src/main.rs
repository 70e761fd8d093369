//! The dispatcher as its own process: `dispatcher`. Several may run at once.

use switchboard_runtime::{Config, Services, init_tracing, serve_metrics, shutdown_signal};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = Config::load()?;
    init_tracing(&config.log);
    serve_metrics(&config.metrics)?;
    let services = Services::connect(config).await?;
    switchboard_dispatcher::run(services, shutdown_signal()).await;
    Ok(())
}
