use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Opens after `threshold` failures in a row and refuses calls for `cooldown`; then lets
/// one trial call through, which closes it again on success.
#[derive(Debug)]
pub struct CircuitBreaker {
    threshold: u32,
    cooldown: Duration,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    failures: u32,
    open_until: Option<Instant>,
}

impl CircuitBreaker {
    pub fn new(threshold: u32, cooldown: Duration) -> Self {
        Self {
            threshold: threshold.max(1),
            cooldown,
            state: Mutex::new(State::default()),
        }
    }

    fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        // A poisoned lock only means another caller panicked mid-update; the counters
        // are still usable.
        let mut guard = self.state.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut guard)
    }

    /// Whether a call may go ahead now.
    pub fn allow(&self) -> bool {
        self.with(|s| match s.open_until {
            Some(until) if Instant::now() < until => false,
            Some(_) => {
                // Half-open: this caller is the trial; others wait for its outcome.
                s.open_until = Some(Instant::now() + self.cooldown);
                true
            }
            None => true,
        })
    }

    pub fn success(&self) {
        self.with(|s| *s = State::default());
    }

    pub fn failure(&self) {
        self.with(|s| {
            s.failures += 1;
            if s.failures >= self.threshold {
                s.open_until = Some(Instant::now() + self.cooldown);
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_the_threshold_and_half_opens_after_the_cooldown() {
        let b = CircuitBreaker::new(2, Duration::from_millis(50));
        assert!(b.allow());
        b.failure();
        assert!(b.allow());
        b.failure();
        assert!(!b.allow(), "open");
        std::thread::sleep(Duration::from_millis(60));
        assert!(b.allow(), "one trial");
        assert!(!b.allow(), "only one");
        b.success();
        assert!(b.allow());
    }
}
