//! Everything that speaks AMQP: the topology, the confirmed publisher and the consumer loop
//! that turns a handler's outcome into ack, delayed retry or dead letter.

mod batch;
mod consumer;
mod dead;
mod publisher;
mod topology;

pub use consumer::{Delivery, Outcome, consume, last_queue_lag};
pub use dead::{DeadLetter, Replayed, dead_letters, replay_dead};
pub use publisher::Publisher;
pub use topology::{BusConfig, QueueStats, queue_stats};

#[derive(Debug, Clone, thiserror::Error)]
pub enum BusError {
    #[error("broker unavailable")]
    Unavailable(#[source] lapin::Error),
    #[error("broker did not confirm the publish within {0:?}")]
    Timeout(std::time::Duration),
    #[error("broker refused the publish: {0}")]
    Refused(String),
    #[error("{0} jobs already wait to be published to this queue")]
    Busy(usize),
}

/// The work queues. Each has its retry ladder and its dead-letter queue.
pub const INBOUND: &str = "inbound";
