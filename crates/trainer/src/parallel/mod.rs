//! The parallelism layer: applied to the single-device model code from outside, as torchtitan's
//! `parallelize` is. The job's ranks form a [`Mesh`] with named dimensions (`dp` outside, `tp`
//! inside); [`TensorParallel`] splits each block's heads and MLP units, and the language
//! model's vocabulary, over `tp` (Megatron style); [`DataParallel`] replicates parameters and averages gradients
//! over `dp`; [`OptimizerShards`] splits the optimizer state over `dp` (`parallel.shard:
//! optimizer`); [`FullShards`] splits the block parameters and their gradients too
//! (`parallel.shard: full`, gathered per segment); [`sigmoid_loss`] picks SigLIP's loss for the
//! mesh (the ring over `dp` ranks, or the plain loss on one).

mod data_parallel;
mod fsdp;
mod mesh;
mod ring_loss;
mod tensor;
mod zero;

pub use data_parallel::DataParallel;
pub use fsdp::{clip_owned_grad_norm, FullShards};
pub use mesh::{check_tp, Mesh};
pub use ring_loss::{distributed_sigmoid_loss, sigmoid_loss};
pub use tensor::{
    check_tp_dims, first_undivided, pali_tp_dims, split_dim, vision_tokens, vision_tp_dims,
    TensorParallel,
};
pub use zero::{deal, OptimizerShards};
