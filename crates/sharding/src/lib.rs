//! Process groups, rank discovery and gradient synchronisation.
//!
//! Every component talks to other ranks through a [`ProcessGroup`], even in a single process,
//! so the code paths for one rank and many ranks are the same.

pub mod error;
pub mod group;
pub mod rank;

pub use error::{Result, ShardingError};
pub use group::{ProcessGroup, ReduceOp, SingleProcess};
pub use rank::{discover, RankInfo};
