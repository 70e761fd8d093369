//! Working hours live in `core`, beside the other tenant settings; re-exported here.

pub use switchboard_core::settings::{UnknownTimezone, WorkingHours};
