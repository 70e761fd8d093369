//! Attempts at a secret (a password, the admin token) counted per client address in Redis,
//! before the secret is checked: attempts made at once from one address check no more
//! secrets than the cap. A success gives its count back. Per deployment (its namespace), so
//! deployments or test runs that share a Redis do not count each other's attempts.

use redis::AsyncCommands;

use crate::{AppState, LimitKey};

/// One kind of secret and its cap: `max` attempts per `window_secs` from one address.
pub struct Attempts {
    pub scope: &'static str,
    pub max: u64,
    pub window_secs: i64,
}

impl Attempts {
    fn key(&self, s: &AppState, client: LimitKey) -> String {
        format!(
            "{}:{}-failures:{client}",
            s.services.config.amqp.namespace, self.scope
        )
    }

    /// Counts an attempt; false when the address is over the cap and must wait. The window
    /// starts at the first attempt and is not pushed back by later ones. With Redis away
    /// the attempt is let through: the secret is still checked, and the per-address limit
    /// of the public endpoints still applies.
    pub async fn allow(&self, s: &AppState, client: LimitKey) -> bool {
        let key = self.key(s, client);
        let mut redis = s.services.redis.clone();
        let counted: Option<u64> = redis::pipe()
            .incr(&key, 1)
            .cmd("EXPIRE")
            .arg(&key)
            .arg(self.window_secs)
            .arg("NX")
            .ignore()
            .query_async::<(u64,)>(&mut redis)
            .await
            .ok()
            .map(|(n,)| n);
        counted.is_none_or(|n| n <= self.max)
    }

    /// The attempt succeeded: it does not count against the address.
    pub async fn give_back(&self, s: &AppState, client: LimitKey) {
        let mut redis = s.services.redis.clone();
        let _: Result<i64, _> = redis.decr(self.key(s, client), 1).await;
    }
}
