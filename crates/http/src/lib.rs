//! The one HTTP client for every outbound call (platform APIs, the LLM, webhooks set up
//! from the command line): one connection pool per process, and no call without a bound.
//! A request may set a longer timeout of its own (Telegram's long poll, a slow LLM); none
//! runs without one.

use std::sync::OnceLock;
use std::time::Duration;

/// How long a TCP and TLS connection may take to open.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a whole request may take, unless the request sets its own.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// The process's client; cheap to clone (clones share the pool).
pub fn client() -> reqwest::Client {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    CLIENT
        .get_or_init(|| {
            reqwest::Client::builder()
                .connect_timeout(CONNECT_TIMEOUT)
                .timeout(REQUEST_TIMEOUT)
                .pool_idle_timeout(Duration::from_secs(60))
                .user_agent(concat!("switchboard/", env!("CARGO_PKG_VERSION")))
                .build()
                // With rustls and its compiled-in roots the builder has nothing that can
                // fail; the fallback only keeps this function total.
                .unwrap_or_default()
        })
        .clone()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// A server that accepts and never answers: the client gives up at its request timeout
    /// (here a request's own, shorter one), not never.
    #[tokio::test]
    async fn a_silent_server_is_given_up_on() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((socket, _)) = listener.accept().await {
                held.push(socket);
            }
        });
        let err = client()
            .get(format!("http://{addr}/"))
            .timeout(Duration::from_millis(300))
            .send()
            .await
            .unwrap_err();
        assert!(err.is_timeout(), "{err}");
    }
}
