//! Tensor parallelism (`parallel.tp`), Megatron-style, applied to the plain model from here:
//! each block's q/k/v projections and MLP input are split by output rows (heads, hidden
//! units) and its attention output and MLP output by input columns over the tensor-parallel
//! group; the model's seams (`palisade_model::tensor_parallel`) sum the partial results, one
//! all-reduce per attention and per MLP in forward and one each in backward. The language
//! model's embedding table and output head are split by vocabulary rows (the loss is taken
//! from the slices of the logits). Everything else (the SigLIP towers' embeddings, LayerNorms,
//! the MAP head's attention, the PaLI projector) is replicated: every rank of the group
//! computes it on the same inputs, so its gradients agree without a reduction.
//!
//! Evaluation runs on the slices too ([`TensorParallel::during`]); checkpoints see whole
//! tensors ([`TensorParallel::gather_all`]), and optimizer state is gathered and sliced by the
//! same rule.

use super::Mesh;
use crate::error::{Result, TrainerError};
use palisade_sharding::{all_reduce_bucketed, broadcast_bucketed, ProcessGroup, ReduceOp};
use std::path::Path;
use tch::{nn, Kind, Tensor};

/// Which dimension of variable `name` is split over the group (None: replicated): the SigLIP
/// towers' and the T5's (transformers' names) column-parallel inputs by rows, their
/// row-parallel outputs by columns, T5's relative-position bias by head and its embedding
/// table and head by vocabulary rows.
pub fn split_dim(name: &str) -> Option<i64> {
    const ROWS: [&str; 13] = [
        ".self_attn.q_proj.",
        ".self_attn.k_proj.",
        ".self_attn.v_proj.",
        ".mlp.fc1.",
        ".SelfAttention.q.",
        ".SelfAttention.k.",
        ".SelfAttention.v.",
        ".EncDecAttention.q.",
        ".EncDecAttention.k.",
        ".EncDecAttention.v.",
        ".DenseReluDense.wi.",
        ".DenseReluDense.wi_0.",
        ".DenseReluDense.wi_1.",
    ];
    const COLUMNS: [&str; 6] = [
        ".self_attn.out_proj.weight",
        ".mlp.fc2.weight",
        ".SelfAttention.o.weight",
        ".EncDecAttention.o.weight",
        ".DenseReluDense.wo.weight",
        ".relative_attention_bias.weight",
    ];
    if ROWS.iter().any(|r| name.contains(r)) || is_vocabulary(name) {
        Some(0)
    } else if COLUMNS.iter().any(|c| name.ends_with(c)) {
        Some(1)
    } else {
        None
    }
}

/// Whether `name` is the language model's embedding table or untied output head.
fn is_vocabulary(name: &str) -> bool {
    ["shared.weight", "lm_head.weight"].iter().any(|v| {
        name.strip_suffix(v)
            .is_some_and(|p| p.is_empty() || p.ends_with('.'))
    })
}

/// The ViT dimensions tensor parallelism divides, named by config key, for [`check_tp_dims`].
pub fn vision_tp_dims(v: &palisade_model::SiglipVisionConfig) -> [(&'static str, usize); 2] {
    [
        ("model.vision num_attention_heads", v.num_attention_heads),
        ("model.vision intermediate_size", v.intermediate_size),
    ]
}

/// The ViT's tokens per image, which sequence parallelism divides, for [`check_tp_dims`].
pub fn vision_tokens(v: &palisade_model::SiglipVisionConfig) -> (&'static str, usize) {
    let side = v.image_size / v.patch_size;
    (
        "the ViT's tokens per image ((image_size / patch_size)²)",
        side * side,
    )
}

/// Every dimension tensor parallelism divides in a PaLI model (ViT and T5), named by config key.
pub fn pali_tp_dims(m: &palisade_model::pali::PaliConfig) -> Vec<(&'static str, usize)> {
    let t = &m.text_config;
    let mut dims = vision_tp_dims(&m.vision_config).to_vec();
    dims.extend([
        ("model.language num_heads", t.num_heads),
        ("model.language d_ff", t.d_ff),
    ]);
    dims
}

/// Refuses a tensor-parallel size that does not divide one of the model's `dims` (what, size).
pub fn check_tp_dims(tp: usize, dims: &[(&str, usize)]) -> std::result::Result<(), String> {
    match first_undivided(tp, dims) {
        Some((what, n)) => Err(format!(
            "key parallel.tp: {tp} does not divide {what} ({n}); each rank takes an equal share"
        )),
        None => Ok(()),
    }
}

/// The first of `dims` (what, size) that `tp` does not divide.
pub fn first_undivided<'a>(tp: usize, dims: &[(&'a str, usize)]) -> Option<(&'a str, usize)> {
    dims.iter().copied().find(|(_, n)| !n.is_multiple_of(tp))
}

/// One split variable.
struct Split {
    name: String,
    var: Tensor,
    dim: i64,
}

/// Whether the replicated variable `name` is used inside a sequence-parallel region (the
/// SigLIP towers' blocks: LayerNorms and the row-parallel outputs' biases), where each rank
/// sees its part of the tokens and so holds part of its gradient.
fn in_sequence_region(name: &str) -> bool {
    name.contains("encoder.layers.") && split_dim(name).is_none()
}

/// The split variables of a model and the group they are split over.
pub struct TensorParallel<'m> {
    group: &'m dyn ProcessGroup,
    splits: Vec<Split>,
    /// Training splits the towers' sequences too (`parallel.sequence_parallel`).
    sequence: bool,
    /// The replicated variables whose gradients are summed over the group after a
    /// sequence-parallel backward.
    in_region: Vec<Tensor>,
    bucket_bytes: usize,
}

impl<'m> TensorParallel<'m> {
    /// Splits `vs` over `mesh`'s tensor-parallel group (None without one): every rank first
    /// takes rank 0's whole weights, then keeps its slice of each split variable. With
    /// `sequence`, training steps ([`TensorParallel::training`]) split the towers' tokens too.
    pub fn new(
        vs: &nn::VarStore,
        mesh: &'m Mesh,
        bucket_bytes: usize,
        sequence: bool,
    ) -> Result<Option<Self>> {
        let Some(group) = mesh.tp() else {
            return Ok(None);
        };
        let mut named: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
        named.sort_by(|a, b| a.0.cmp(&b.0));
        let mut all: Vec<Tensor> = named.iter().map(|(_, t)| t.shallow_clone()).collect();
        broadcast_bucketed(mesh.world(), &mut all, 0, bucket_bytes)?;
        let t = group.world_size() as i64;
        let mut splits = Vec::new();
        let mut in_region = Vec::new();
        for (name, var) in named {
            let Some(dim) = split_dim(&name) else {
                if sequence && in_sequence_region(&name) && var.requires_grad() {
                    in_region.push(var);
                }
                continue;
            };
            let n = var.size()[dim as usize];
            if n % t != 0 {
                let what = if is_vocabulary(&name) {
                    let pad = (n + t - 1) / t * t;
                    format!(
                        "the vocabulary ({n} rows of tensor {name}; pad it to a multiple, \
                         e.g. model.language.vocab_size: {pad})"
                    )
                } else {
                    format!("dimension {dim} ({n}) of tensor {name}")
                };
                return Err(TrainerError::Config(format!(
                    "key parallel.tp: {t} does not divide {what}; each rank takes an equal share"
                )));
            }
            splits.push(Split { name, var, dim });
        }
        let tp = TensorParallel {
            group,
            splits,
            sequence,
            in_region,
            bucket_bytes,
        };
        tp.slice_all();
        Ok(Some(tp))
    }

    /// How many variables are split, and this rank's share of their elements.
    pub fn split_count(&self) -> usize {
        self.splits.len()
    }

    /// This rank's slice along `dim` of a whole tensor.
    fn slice(&self, t: &Tensor, dim: i64) -> Tensor {
        let len = t.size()[dim as usize] / self.group.world_size() as i64;
        t.narrow(dim, self.group.rank() as i64 * len, len)
            .contiguous()
    }

    /// The whole tensor from every rank's slice along `dim`.
    fn gather(&self, t: &Tensor, dim: i64) -> Result<Tensor> {
        let kind = t.kind();
        let carry = if self.group.carries(kind) {
            kind
        } else {
            Kind::Float
        };
        let moved = t.detach().to_kind(carry).movedim(dim, 0).contiguous();
        let whole = self.group.all_gather(&moved)?;
        Ok(whole.movedim(0, dim).contiguous().to_kind(kind))
    }

    /// Every split variable back to this rank's slice.
    pub fn slice_all(&self) {
        tch::no_grad(|| {
            for s in &self.splits {
                let mut v = s.var.shallow_clone();
                let part = self.slice(&v.detach(), s.dim);
                v.set_data(&part);
            }
        });
    }

    /// Every split variable whole (each rank's slice gathered).
    pub fn gather_all(&self) -> Result<()> {
        for s in &self.splits {
            let whole = self.gather(&s.var, s.dim)?;
            let mut v = s.var.shallow_clone();
            tch::no_grad(|| v.set_data(&whole));
        }
        Ok(())
    }

    /// Runs `f` (an evaluation, or a forward and backward without sequence parallelism) with
    /// the group installed in the model's seams, on this rank's slices; a failed collective
    /// inside it is the error.
    pub fn during<T>(&self, f: impl FnOnce() -> Result<T>) -> Result<T> {
        self.installed(false, f)
    }

    /// Runs `f` (a training step's forward and backward) as [`TensorParallel::during`] does,
    /// the towers' blocks sequence-parallel if so configured; then sums the gradients the
    /// ranks' parts of the sequence gave the replicated variables inside those blocks.
    pub fn training<T>(&self, f: impl FnOnce() -> Result<T>) -> Result<T> {
        let out = self.installed(self.sequence, f)?;
        if self.sequence {
            let mut grads: Vec<Tensor> = self
                .in_region
                .iter()
                .map(Tensor::grad)
                .filter(Tensor::defined)
                .collect();
            tch::no_grad(|| {
                all_reduce_bucketed(self.group, &mut grads, ReduceOp::Sum, self.bucket_bytes)
            })?;
        }
        Ok(out)
    }

    fn installed<T>(&self, sequence: bool, f: impl FnOnce() -> Result<T>) -> Result<T> {
        let sum = Sum {
            group: self.group,
            sequence,
        };
        palisade_model::tensor_parallel::scope(&sum, f).map_err(|msg| {
            TrainerError::Sharding(palisade_sharding::ShardingError::Collective {
                op: "tensor-parallel all-reduce",
                msg,
            })
        })?
    }

    /// The split variable `name`: its split dimension and this rank's slice shape.
    fn split_of(&self, name: &str) -> Option<(i64, Vec<i64>)> {
        let s = self.splits.iter().find(|s| s.name == name)?;
        Some((s.dim, s.var.size()))
    }

    /// The split dimension of variable `name` (None: replicated or not a variable).
    fn var_dim(&self, name: &str) -> Option<i64> {
        self.split_of(name).map(|(d, _)| d)
    }

    /// The split dimension of optimizer state entry `key` (`exp_avg.NAME`, `master.NAME`).
    fn state_dim(&self, key: &str) -> Option<i64> {
        self.var_dim(key.split_once('.')?.1)
    }

    /// `entries` with each split one (dimension from `dim_of`) made whole; every rank of the
    /// group calls it with its entries in the same order.
    fn gather_entries(
        &self,
        entries: Vec<(String, Tensor)>,
        dim_of: impl Fn(&str) -> Option<i64>,
    ) -> Result<Vec<(String, Tensor)>> {
        entries
            .into_iter()
            .map(|(k, t)| match dim_of(&k) {
                Some(dim) => Ok((k, self.gather(&t, dim)?)),
                None => Ok((k, t)),
            })
            .collect()
    }

    /// Whole `entries` (from the checkpoint `origin`) cut to this rank's slices (dimension from
    /// `dim_of`); an entry that is not the whole of its variable's slices is refused, naming it
    /// and both shapes.
    fn slice_entries(
        &self,
        entries: Vec<(String, Tensor)>,
        origin: &Path,
        dim_of: impl Fn(&str) -> Option<(i64, Vec<i64>)>,
    ) -> Result<Vec<(String, Tensor)>> {
        let t = self.group.world_size() as i64;
        entries
            .into_iter()
            .map(|(k, x)| match dim_of(&k) {
                Some((dim, mut whole)) => {
                    whole[dim as usize] *= t;
                    if x.size() != whole {
                        return Err(TrainerError::Checkpoint {
                            path: origin.to_path_buf(),
                            msg: format!(
                                "tensor {k}: shape {:?}, but the model's is {whole:?} \
                                 (parallel.tp: {t} slices of dimension {dim})",
                                x.size()
                            ),
                        });
                    }
                    let part = self.slice(&x, dim);
                    Ok((k, part))
                }
                None => Ok((k, x)),
            })
            .collect()
    }

    /// Optimizer state with each split entry made whole, for a checkpoint.
    pub fn gather_state(&self, state: Vec<(String, Tensor)>) -> Result<Vec<(String, Tensor)>> {
        self.gather_entries(state, |k| self.state_dim(k))
    }

    /// Whole optimizer state (from the checkpoint `origin`) cut to this rank's slices.
    pub fn slice_state(
        &self,
        state: Vec<(String, Tensor)>,
        origin: &Path,
    ) -> Result<Vec<(String, Tensor)>> {
        self.slice_entries(state, origin, |k| self.split_of(k.split_once('.')?.1))
    }

    /// Tensors named as the model's variables (the moving average) made whole.
    pub fn gather_named(&self, named: Vec<(String, Tensor)>) -> Result<Vec<(String, Tensor)>> {
        self.gather_entries(named, |n| self.var_dim(n))
    }

    /// Whole tensors named as the model's variables (from `origin`) cut to this rank's slices.
    pub fn slice_named(
        &self,
        named: Vec<(String, Tensor)>,
        origin: &Path,
    ) -> Result<Vec<(String, Tensor)>> {
        self.slice_entries(named, origin, |n| self.split_of(n))
    }

    /// The squared gradient norm of `params` (named `names`) over the group: split gradients'
    /// squares summed over its ranks, replicated ones counted once.
    pub fn grad_sq(&self, names: &[String], params: &[Tensor]) -> Result<f64> {
        let (mut split, mut whole) = (Vec::new(), Vec::new());
        for (n, p) in names.iter().zip(params) {
            if split_dim(n).is_some() {
                split.push(p);
            } else {
                whole.push(p);
            }
        }
        let mut sq = Tensor::from_slice(&[crate::optimizer::grad_norm(split).powi(2)]);
        self.group.all_reduce(&mut sq, ReduceOp::Sum)?;
        Ok(sq.double_value(&[0]) + crate::optimizer::grad_norm(whole).powi(2))
    }

    /// The global gradient norm of the trainable `params` (named `names`), clipped to
    /// `max_norm`.
    pub fn clip_grad_norm(
        &self,
        names: &[String],
        params: &[Tensor],
        max_norm: f64,
    ) -> Result<f64> {
        let norm = self.grad_sq(names, params)?.sqrt();
        crate::optimizer::clip_to(params, norm, max_norm);
        Ok(norm)
    }
}

/// The group as the model's seams see it.
struct Sum<'a> {
    group: &'a dyn ProcessGroup,
    sequence: bool,
}

impl palisade_model::tensor_parallel::TpComm for Sum<'_> {
    fn sequence_parallel(&self) -> bool {
        self.sequence
    }

    fn size(&self) -> usize {
        self.group.world_size()
    }

    fn rank(&self) -> usize {
        self.group.rank()
    }

    fn gather(&self, t: &Tensor) -> std::result::Result<Tensor, String> {
        let kind = t.kind();
        let carry = if self.group.carries(kind) {
            kind
        } else {
            Kind::Float
        };
        let whole = self
            .group
            .all_gather(&t.to_kind(carry))
            .map_err(|e| e.to_string())?;
        Ok(whole.to_kind(kind))
    }

    fn sum_(&self, t: &mut Tensor) -> std::result::Result<(), String> {
        let kind = t.kind();
        if self.group.carries(kind) {
            return self
                .group
                .all_reduce(t, ReduceOp::Sum)
                .map_err(|e| e.to_string());
        }
        let mut wide = t.to_kind(Kind::Float);
        self.group
            .all_reduce(&mut wide, ReduceOp::Sum)
            .map_err(|e| e.to_string())?;
        t.copy_(&wide);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_split_by_heads_and_units_the_rest_is_whole() {
        let l = "vision_model.encoder.layers.3";
        assert_eq!(split_dim(&format!("{l}.self_attn.q_proj.weight")), Some(0));
        assert_eq!(split_dim(&format!("{l}.self_attn.v_proj.bias")), Some(0));
        assert_eq!(split_dim(&format!("{l}.mlp.fc1.bias")), Some(0));
        assert_eq!(
            split_dim(&format!("{l}.self_attn.out_proj.weight")),
            Some(1)
        );
        assert_eq!(split_dim(&format!("{l}.mlp.fc2.weight")), Some(1));
        assert_eq!(split_dim(&format!("{l}.mlp.fc2.bias")), None);
        assert_eq!(split_dim(&format!("{l}.layer_norm1.weight")), None);
        assert_eq!(
            split_dim("vision_model.head.attention.in_proj_weight"),
            None
        );
        assert_eq!(
            split_dim("text_model.embeddings.token_embedding.weight"),
            None
        );
        let b = "language_model.decoder.block.0.layer";
        for (name, dim) in [
            ("0.SelfAttention.q.weight", Some(0)),
            ("1.EncDecAttention.v.weight", Some(0)),
            ("0.SelfAttention.o.weight", Some(1)),
            ("0.SelfAttention.relative_attention_bias.weight", Some(1)),
            ("2.DenseReluDense.wi_1.weight", Some(0)),
            ("2.DenseReluDense.wo.weight", Some(1)),
            ("2.layer_norm.weight", None),
        ] {
            assert_eq!(split_dim(&format!("{b}.{name}")), dim, "{name}");
        }
        assert_eq!(split_dim("language_model.shared.weight"), Some(0));
        assert_eq!(split_dim("language_model.lm_head.weight"), Some(0));
        assert_eq!(split_dim("shared.weight"), Some(0));
        assert_eq!(split_dim("language_model.unshared.weight"), None);
    }

    #[test]
    fn a_size_the_heads_do_not_take_is_named() {
        let e = check_tp_dims(4, &[("model.vision num_attention_heads", 6)]).unwrap_err();
        assert!(
            e.contains("parallel.tp: 4") && e.contains("num_attention_heads (6)"),
            "{e}"
        );
        assert!(check_tp_dims(2, &[("x", 6)]).is_ok());
    }
}
