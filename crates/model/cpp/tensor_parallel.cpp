// The two autograd functions of Megatron-style tensor parallelism, which tch cannot write
// (it has no custom autograd functions): `enter` is the identity forward whose backward sums
// the incoming gradient over the tensor-parallel group (before a column-parallel layer, whose
// input every rank shares); `exit` sums over the group forward and passes the gradient
// through (after a row-parallel layer, whose outputs are partial sums). The sum itself is
// Rust's (the job's process group), reached through a callback set once and told which scope
// (group) the function was made in: backward may run on another thread than forward (CUDA's
// autograd engine runs it on its device threads).
#include <torch/csrc/autograd/custom_function.h>
#include <cstring>
#include <stdexcept>

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

namespace {
// Sums `t` in place over scope `scope`'s group: 0 done, 1 the collective failed (Rust keeps
// the error until the scope ends; the value is then not used), 2 the scope has ended.
typedef int (*sum_fn)(at::Tensor *t, int64_t scope);
sum_fn SUM = nullptr;

at::Tensor summed(const at::Tensor &x, int64_t scope) {
  auto t = x.contiguous().clone();
  if (SUM == nullptr || SUM(&t, scope) == 2) {
    throw std::runtime_error(
        "a tensor-parallel sum ran after its scope ended (backward outside the training step)");
  }
  return t;
}

struct Enter : public torch::autograd::Function<Enter> {
  static at::Tensor forward(AutogradContext *ctx, const at::Tensor &x, int64_t scope) {
    ctx->saved_data["scope"] = scope;
    return x.view_as(x);
  }
  static variable_list backward(AutogradContext *ctx, variable_list g) {
    return {summed(g[0], ctx->saved_data["scope"].toInt()), at::Tensor()};
  }
};

struct Exit : public torch::autograd::Function<Exit> {
  static at::Tensor forward(AutogradContext *, const at::Tensor &x, int64_t scope) {
    return summed(x, scope);
  }
  static variable_list backward(AutogradContext *, variable_list g) { return {g[0], at::Tensor()}; }
};

char *error(const std::exception &e) { return strdup(e.what()); }
}  // namespace

extern "C" void palisade_tp_set_sum(sum_fn f) { SUM = f; }

// `*out` becomes a new tensor: `x` through Enter (0) or Exit (1), made in scope `scope`.
extern "C" char *palisade_tp_apply(const at::Tensor *x, int which, int64_t scope,
                                   at::Tensor **out) {
  try {
    *out = new at::Tensor(which == 0 ? Enter::apply(*x, scope) : Exit::apply(*x, scope));
    return nullptr;
  } catch (const std::exception &e) {
    return error(e);
  }
}
