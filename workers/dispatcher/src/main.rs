//! The dispatcher as its own process: `dispatcher`. Several may run at once.

use switchboard_runtime::{Config, Services, init_tracing, shutdown_signal};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = Config::load()?;
    init_tracing(&config.log);
    let services = Services::connect(config).await?;
    switchboard_dispatcher::run(services, shutdown_signal()).await;
    Ok(())
}
