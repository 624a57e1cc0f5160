// The autograd functions of Megatron-style tensor (and sequence) parallelism, which tch cannot
// write (it has no custom autograd functions). Each is a pair of group operations, one for
// forward and one for backward: `enter` is the identity forward whose backward sums the
// incoming gradient over the tensor-parallel group (before a column-parallel layer, whose input
// every rank shares); `exit` sums forward and passes the gradient through (after a row-parallel
// layer, whose outputs are partial sums). In a sequence-parallel region their forms along the
// sequence are all-gather / reduce-scatter and reduce-scatter / all-gather, and a region is
// entered by taking this rank's slice (backward: all-gather) and left by an all-gather
// (backward: this rank's slice). The operations are Rust's (the job's process group), reached
// through a callback set once and told which scope (group) the function was made in: backward
// may run on another thread than forward (CUDA's autograd engine runs it on its device threads).
#include <torch/csrc/autograd/custom_function.h>
#include <cstring>
#include <stdexcept>

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

namespace {
// Runs group operation `op` (1 sum, 2 gather along the sequence, 3 sum then this rank's slice
// of the sequence, 4 this rank's slice) on `x` in scope `scope`, setting `*out` to a new
// tensor: 0 done, 1 the collective failed (Rust keeps the error until the scope ends; `*out`
// is a stand-in of the right shape), 2 the scope has ended.
typedef int (*op_fn)(int op, const at::Tensor *x, at::Tensor **out, int64_t scope);
op_fn OP = nullptr;

constexpr int64_t IDENTITY = 0;

at::Tensor run(int64_t op, const at::Tensor &x, int64_t scope) {
  if (op == IDENTITY) {
    return x;
  }
  at::Tensor *out = nullptr;
  if (OP == nullptr || OP(static_cast<int>(op), &x, &out, scope) == 2 || out == nullptr) {
    throw std::runtime_error(
        "a tensor-parallel sum ran after its scope ended (backward outside the training step)");
  }
  at::Tensor t = *out;
  delete out;
  return t;
}

struct Seam : public torch::autograd::Function<Seam> {
  static at::Tensor forward(AutogradContext *ctx, const at::Tensor &x, int64_t fwd, int64_t bwd,
                            int64_t scope) {
    ctx->saved_data["bwd"] = bwd;
    ctx->saved_data["scope"] = scope;
    // A view when nothing is done forward, so that autograd sees a new node.
    return fwd == IDENTITY ? x.view_as(x) : run(fwd, x, scope);
  }
  static variable_list backward(AutogradContext *ctx, variable_list g) {
    auto bwd = ctx->saved_data["bwd"].toInt();
    auto scope = ctx->saved_data["scope"].toInt();
    return {run(bwd, g[0], scope), at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

char *error(const std::exception &e) { return strdup(e.what()); }
}  // namespace

extern "C" void palisade_tp_set_op(op_fn f) { OP = f; }

// `*out` becomes a new tensor: `x` through operation `fwd` forward and `bwd` backward, made in
// scope `scope`.
extern "C" char *palisade_tp_apply(const at::Tensor *x, int64_t fwd, int64_t bwd, int64_t scope,
                                   at::Tensor **out) {
  try {
    *out = new at::Tensor(Seam::apply(*x, fwd, bwd, scope));
    return nullptr;
  } catch (const std::exception &e) {
    return error(e);
  }
}
