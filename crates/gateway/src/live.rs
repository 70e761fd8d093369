use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

/// One Redis subscription per gateway process, fanned out to every open event stream,
/// which each keep the events of their own topic.
#[derive(Clone)]
pub struct LiveHub {
    tx: broadcast::Sender<Arc<(String, String)>>,
}

impl LiveHub {
    pub fn start(redis_url: String, shutdown: CancellationToken) -> Self {
        let (tx, _) = broadcast::channel(1024);
        let hub = Self { tx: tx.clone() };
        tokio::spawn(async move {
            while !shutdown.is_cancelled() {
                match switchboard_store::subscribe_live(&redis_url).await {
                    Ok(stream) => {
                        let mut stream = std::pin::pin!(stream);
                        loop {
                            tokio::select! {
                                _ = shutdown.cancelled() => return,
                                next = stream.next() => match next {
                                    Some(ev) => { let _ = tx.send(Arc::new(ev)); }
                                    None => break,
                                }
                            }
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %switchboard_core::error_chain(&e), "live feed subscription failed; retrying")
                    }
                }
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
            }
        });
        hub
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<(String, String)>> {
        self.tx.subscribe()
    }
}
