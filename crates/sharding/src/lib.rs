//! Process groups (single process, MPI, TCP, NCCL), rank discovery, bucketed collectives, the
//! collective watchdog and the launcher. Parallelism built on them (data parallelism, sharded
//! state, tensor parallelism) lives in palisade-trainer's `parallel`.
//!
//! Every component talks to other ranks through a [`ProcessGroup`], even in a single process,
//! so the code paths for one rank and many ranks are the same. [`init`] picks the backend from
//! the launcher's environment: one process, MPI (mpirun, srun), TCP (`palisade launch`), or
//! NCCL on GPUs.

pub mod bucketed;
pub mod checks;
mod dl;
pub mod error;
pub mod group;
pub mod init;
pub mod launch;
pub mod libtorch;
pub mod mpi_group;
#[doc(hidden)]
pub mod mpi_harness;
pub mod nccl;
pub mod nccl_lib;
pub mod rank;
mod rendezvous;
pub mod tcp_group;
mod tensor_buf;
pub mod watchdog;

pub use bucketed::{all_reduce_bucketed, broadcast_bucketed, DEFAULT_BUCKET_BYTES};
pub use checks::{all_gather_bytes, check_same_config};
pub use error::{Result, ShardingError};
pub use group::{ProcessGroup, ReduceOp, SingleProcess};
pub use init::{backend_from_env, init, init_with, Backend, InitOptions};
pub use mpi_group::MpiGroup;
pub use rank::{discover, discover_from, RankInfo};
pub use tcp_group::TcpGroup;
