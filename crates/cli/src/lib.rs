//! `switchboard up`: the gateway, the AI worker, the dispatcher and the listener in one
//! process.

use std::net::SocketAddr;

use switchboard_runtime::{Config, Services};
use switchboard_store::Store;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// A running system: where it listens, and its tasks.
pub struct Running {
    pub addr: SocketAddr,
    pub services: Services,
    pub tasks: JoinSet<()>,
}

/// Which parts of the system a process runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Parts {
    pub gateway: bool,
    pub ai_worker: bool,
    pub dispatcher: bool,
    pub listener: bool,
}

impl Parts {
    pub const ALL: Parts = Parts {
        gateway: true,
        ai_worker: true,
        dispatcher: true,
        listener: true,
    };
    pub const GATEWAY: Parts = Parts {
        gateway: true,
        ai_worker: false,
        dispatcher: false,
        listener: false,
    };
}

/// Migrates, seeds the demo tenant, and starts the chosen parts, the gateway on `listener`.
pub async fn start(
    config: Config,
    listener: TcpListener,
    parts: Parts,
    shutdown: CancellationToken,
) -> anyhow::Result<Running> {
    Store::migrate(&config.database.url).await?;
    let services = Services::connect(config).await?;
    services.store.seed_demo().await?;
    let addr = listener.local_addr()?;
    let mut tasks = JoinSet::new();
    if parts.gateway {
        let (s, sd) = (services.clone(), shutdown.clone());
        tasks.spawn(async move {
            if let Err(e) = switchboard_gateway::serve(s, listener, sd).await {
                tracing::error!(error = %switchboard_core::error_chain(&e), "gateway stopped");
            }
        });
    }
    if parts.ai_worker {
        tasks.spawn(switchboard_ai_worker::run(
            services.clone(),
            shutdown.clone(),
        ));
    }
    if parts.dispatcher {
        tasks.spawn(switchboard_dispatcher::run(
            services.clone(),
            shutdown.clone(),
        ));
    }
    if parts.listener {
        tasks.spawn(switchboard_listener::run(
            services.clone(),
            shutdown.clone(),
        ));
    }
    let roles = [
        (parts.gateway, "gateway"),
        (parts.ai_worker, "ai-worker"),
        (parts.dispatcher, "dispatcher"),
        (parts.listener, "listener"),
    ]
    .into_iter()
    .filter_map(|(on, role)| on.then_some(role))
    .collect();
    // Detached: the process ends when a part does (a supervisor restarts it), not when
    // its heartbeat does.
    tokio::spawn(switchboard_runtime::heartbeat(
        services.clone(),
        roles,
        shutdown,
    ));
    Ok(Running {
        addr,
        services,
        tasks,
    })
}
