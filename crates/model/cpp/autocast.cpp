// tch exposes autocast on/off but not its dtype, whose CUDA default is float16. palisade trains
// in bfloat16 (no loss scaling needed), so this one call sets it.
#include <ATen/autocast_mode.h>

extern "C" int palisade_set_autocast_cuda_bf16() {
  at::autocast::set_autocast_dtype(at::kCUDA, at::kBFloat16);
  return at::autocast::get_autocast_dtype(at::kCUDA) == at::kBFloat16;
}

// Whether CUDA autocast is on here, so that recomputation (remat) runs as the forward did.
extern "C" int palisade_autocast_cuda_enabled() {
  return at::autocast::is_autocast_enabled(at::kCUDA);
}
