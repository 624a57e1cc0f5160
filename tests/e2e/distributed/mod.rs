//! Multi-rank tests: the distributed sigmoid loss, data-parallel training, fully sharded
//! parameters, tensor parallelism, `palisade launch`.
//!
//! Tests that need ranks re-run themselves: the test function launches this test binary under
//! `mpirun -np N`, filtered to that one test, and the ranks take the worker branch.

pub(crate) mod fsdp;
mod launch;
mod loss;
pub(crate) mod ranks;
mod tensor;
pub(crate) mod training;
