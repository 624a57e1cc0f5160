// tch can zero a gradient but not drop it. Sharded parameters (parallel.shard: full) hand their
// gradient to the owning rank and must then hold none, so that memory is freed and the next
// backward starts a fresh one rather than adding into a stale buffer.
#include <ATen/core/Tensor.h>

// Leaves `t` without a gradient (t.grad is undefined afterwards).
extern "C" void palisade_grad_reset(at::Tensor *t) { t->mutable_grad().reset(); }

// Makes `g` the gradient of `t` (a set-aside gradient handed back).
extern "C" void palisade_grad_set(at::Tensor *t, const at::Tensor *g) { t->mutable_grad() = *g; }
