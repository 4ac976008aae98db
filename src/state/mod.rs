//! The in-memory state: an immutable [`Version`] that readers hold (a snapshot file plus
//! in-memory overlays of the changes since), and its merged reads.

mod active;
mod persist;
mod replayed;
mod scan;
mod stack;
mod version;

pub use active::Active;
pub use replayed::{Mark, ReplayBatch, Replayed};
pub use scan::{Scan, ValueRef};
pub use stack::{STACK_MAX, Stacked, needs_merge, normalize};
pub use version::{Layer, Version};
