//! SigLIP's pairwise sigmoid loss (Zhai et al. 2023): every image-text pair is a binary
//! classification, +1 on the diagonal and -1 elsewhere, so no softmax over the batch is needed.

use tch::{Kind, Tensor};

/// Logits `exp(t') · zimg · ztxtᵀ + b` for L2-normalised embeddings [B, D] × [C, D] → [B, C].
pub fn sigmoid_logits(
    zimg: &Tensor,
    ztxt: &Tensor,
    logit_scale: &Tensor,
    logit_bias: &Tensor,
) -> Tensor {
    zimg.matmul(&ztxt.tr()) * logit_scale.exp() + logit_bias
}

/// Mean over images of `-Σ_j log σ(label_ij · logit_ij)` with label +1 iff i == j.
///
/// The same value as transformers' `SiglipModel(return_loss=True)` and big_vision's
/// `sigmoid_loss`, computed in float32 even under autocast.
pub fn sigmoid_loss(
    zimg: &Tensor,
    ztxt: &Tensor,
    logit_scale: &Tensor,
    logit_bias: &Tensor,
) -> Tensor {
    let logits = sigmoid_logits(zimg, ztxt, logit_scale, logit_bias).to_kind(Kind::Float);
    let n = logits.size()[0];
    let labels = Tensor::eye(n, (Kind::Float, logits.device())) * 2.0 - 1.0;
    let loglik = (labels * logits).log_sigmoid();
    -loglik.sum(Kind::Float) / n as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_formula_on_a_hand_example() {
        let zimg = Tensor::from_slice(&[1.0f32, 0.0, 0.0, 1.0]).view([2, 2]);
        let ztxt = Tensor::from_slice(&[1.0f32, 0.0, 0.6, 0.8]).view([2, 2]);
        let t = Tensor::from_slice(&[10f32.ln()]);
        let b = Tensor::from_slice(&[-10.0f32]);
        let loss = sigmoid_loss(&zimg, &ztxt, &t, &b).double_value(&[]);
        // logits: [[0, -4], [-10, -2]]; labels [[1,-1],[-1,1]].
        let ls = |x: f64| -(1.0 + (-x).exp()).ln();
        let expect = -(ls(0.0) + ls(4.0) + ls(10.0) + ls(-2.0)) / 2.0;
        assert!((loss - expect).abs() < 1e-5, "{loss} vs {expect}");
    }

    #[test]
    fn gradient_pulls_matching_pairs_together() {
        let zimg = Tensor::from_slice(&[1.0f32, 0.0, 0.0, 1.0])
            .view([2, 2])
            .set_requires_grad(true);
        let ztxt = Tensor::from_slice(&[0.0f32, 1.0, 1.0, 0.0]).view([2, 2]);
        let t = Tensor::from_slice(&[0.0f32]);
        let b = Tensor::from_slice(&[0.0f32]);
        sigmoid_loss(&zimg, &ztxt, &t, &b).backward();
        let g = zimg.grad();
        // Image 0 should move toward text 0 = (0, 1): negative gradient on its second coordinate.
        assert!(g.double_value(&[0, 1]) < 0.0);
        assert!(g.double_value(&[0, 0]) > 0.0);
    }
}
