//! The AI worker as its own process: `ai-worker`. Scale it by running more of them.

use switchboard_runtime::{Config, Services, init_tracing, serve_metrics, shutdown_signal};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = Config::load()?;
    init_tracing(&config.log);
    serve_metrics(&config.metrics)?;
    let services = Services::connect(config).await?;
    switchboard_ai_worker::run(services, shutdown_signal()).await;
    Ok(())
}
