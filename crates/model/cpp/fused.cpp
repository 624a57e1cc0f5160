// libtorch's multi-tensor kernels, which tch 0.26 does not expose: the fused AdamW update
// (PyTorch's `AdamW(fused=True)`), a list's norms and an in-place scale. Each walks a whole
// list of tensors in one call instead of several small kernels per tensor. A libtorch error
// comes back as a message (freed with palisade_free_error) rather than crossing into Rust.
#include <ATen/ATen.h>
#include <cstring>
#include <vector>

namespace {
std::vector<at::Tensor> list(const at::Tensor *const *ts, size_t n) {
  std::vector<at::Tensor> out;
  out.reserve(n);
  for (size_t i = 0; i < n; ++i) out.push_back(*ts[i]);
  return out;
}

char *error(const std::exception &e) { return strdup(e.what()); }
}  // namespace

extern "C" void palisade_free_error(char *e) { free(e); }

// One AdamW step (decoupled weight decay) over n parameters with their gradients and moments;
// `step` is a 0-d float tensor holding the update's number (bias correction reads it).
extern "C" char *palisade_fused_adamw(const at::Tensor *const *params,
                                      const at::Tensor *const *grads,
                                      const at::Tensor *const *exp_avgs,
                                      const at::Tensor *const *exp_avg_sqs, size_t n,
                                      const at::Tensor *step, double lr, double beta1,
                                      double beta2, double weight_decay, double eps) {
  try {
    std::vector<at::Tensor> steps(n, *step);
    at::_fused_adamw_(list(params, n), list(grads, n), list(exp_avgs, n), list(exp_avg_sqs, n),
                      {}, steps, lr, beta1, beta2, weight_decay, eps, false, false);
    return nullptr;
  } catch (const std::exception &e) {
    return error(e);
  }
}

// The L2 norm of n tensors taken together, accumulated in float32.
extern "C" char *palisade_foreach_norm(const at::Tensor *const *ts, size_t n, double *out) {
  try {
    auto norms = at::_foreach_norm(list(ts, n), 2, at::kFloat);
    *out = at::stack(norms).norm().item<double>();
    return nullptr;
  } catch (const std::exception &e) {
    return error(e);
  }
}

// Multiplies n tensors in place by `scale`.
extern "C" char *palisade_foreach_mul(const at::Tensor *const *ts, size_t n, double scale) {
  try {
    at::_foreach_mul_(list(ts, n), scale);
    return nullptr;
  } catch (const std::exception &e) {
    return error(e);
  }
}
