// The two autograd functions of Megatron-style tensor parallelism, which tch cannot write
// (it has no custom autograd functions): `enter` is the identity forward whose backward sums
// the incoming gradient over the tensor-parallel group (before a column-parallel layer, whose
// input every rank shares); `exit` sums over the group forward and passes the gradient
// through (after a row-parallel layer, whose outputs are partial sums). The sum itself is
// Rust's (the job's process group), reached through a callback set once.
#include <torch/csrc/autograd/custom_function.h>
#include <cstring>

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

namespace {
// Sums `t` in place over the group; returns false when the collective failed (Rust keeps
// the error until the step asks for it).
typedef bool (*sum_fn)(at::Tensor *t);
sum_fn SUM = nullptr;

at::Tensor summed(const at::Tensor &x) {
  auto t = x.contiguous().clone();
  if (SUM == nullptr || !SUM(&t)) {
    // The caller reads Rust's recorded error; the value is then not used.
  }
  return t;
}

struct Enter : public torch::autograd::Function<Enter> {
  static at::Tensor forward(AutogradContext *, const at::Tensor &x) { return x.view_as(x); }
  static variable_list backward(AutogradContext *, variable_list g) { return {summed(g[0])}; }
};

struct Exit : public torch::autograd::Function<Exit> {
  static at::Tensor forward(AutogradContext *, const at::Tensor &x) { return summed(x); }
  static variable_list backward(AutogradContext *, variable_list g) { return {g[0]}; }
};

char *error(const std::exception &e) { return strdup(e.what()); }
}  // namespace

extern "C" void palisade_tp_set_sum(sum_fn f) { SUM = f; }

// `*out` becomes a new tensor: `x` through Enter (0) or Exit (1).
extern "C" char *palisade_tp_apply(const at::Tensor *x, int which, at::Tensor **out) {
  try {
    *out = new at::Tensor(which == 0 ? Enter::apply(*x) : Exit::apply(*x));
    return nullptr;
  } catch (const std::exception &e) {
    return error(e);
  }
}
