use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::{Stream, StreamExt};
use tokio::sync::broadcast;
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;
use tokio_util::sync::CancellationToken;

use crate::{ApiError, LimitKey};

/// One event as the hub fans it out: (topic, JSON).
pub type LiveEvent = Arc<(String, String)>;

/// One Redis subscription per gateway process, fanned out to every open event stream,
/// which each keep the events of their own topic. Open streams are counted, per address
/// and in all, so that idle connections cannot use up the process's memory and files; and
/// every stream ends when the gateway shuts down, so that it stops within its grace.
#[derive(Clone)]
pub struct LiveHub {
    tx: broadcast::Sender<LiveEvent>,
    open: Arc<OpenStreams>,
    shutdown: CancellationToken,
}

struct OpenStreams {
    by_address: Mutex<HashMap<LimitKey, usize>>,
    per_address: usize,
    total: usize,
}

/// Held by an open stream; gives its place back when the stream is dropped.
struct Place {
    open: Arc<OpenStreams>,
    address: LimitKey,
}

impl Drop for Place {
    fn drop(&mut self) {
        let mut by = self
            .open
            .by_address
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(n) = by.get_mut(&self.address) {
            *n -= 1;
            if *n == 0 {
                by.remove(&self.address);
            }
        }
    }
}

impl LiveHub {
    /// `per_address` and `total` cap the event streams open at once.
    pub fn start(
        redis_url: String,
        shutdown: CancellationToken,
        per_address: usize,
        total: usize,
    ) -> Self {
        let (tx, _) = broadcast::channel(1024);
        let hub = Self {
            tx: tx.clone(),
            open: Arc::new(OpenStreams {
                by_address: Mutex::default(),
                per_address: per_address.max(1),
                total: total.max(1),
            }),
            shutdown: shutdown.clone(),
        };
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

    /// Every event from now on, for one stream from `address`, until the gateway shuts
    /// down; 429 when that address, or the process, already has as many open as allowed.
    pub fn subscribe(
        &self,
        address: LimitKey,
    ) -> Result<impl Stream<Item = Result<LiveEvent, BroadcastStreamRecvError>> + use<>, ApiError>
    {
        let place = {
            let mut by = self
                .open
                .by_address
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            let all: usize = by.values().sum();
            let mine = by.get(&address).copied().unwrap_or(0);
            if mine >= self.open.per_address || all >= self.open.total {
                return Err(ApiError::TooMany(
                    "too many open event streams; close one and retry".into(),
                ));
            }
            *by.entry(address).or_default() += 1;
            Place {
                open: self.open.clone(),
                address,
            }
        };
        let stop = self.shutdown.clone().cancelled_owned();
        Ok(BroadcastStream::new(self.tx.subscribe())
            .take_until(stop)
            .map(move |ev| {
                // The place is held for as long as the stream lives.
                let _held = &place;
                ev
            }))
    }
}
