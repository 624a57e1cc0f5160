// tch exposes CUDA autocast on/off only (and skips it when CUDA is absent), with float16 as the
// dtype. palisade trains in bfloat16 (no loss scaling needed) on CUDA and on the CPU, so these
// calls enter and leave autocast for either device type with bfloat16 as its dtype.
#include <ATen/autocast_mode.h>

static at::DeviceType device_type(int cuda) { return cuda ? at::kCUDA : at::kCPU; }

// Turns bfloat16 autocast on for the device type; returns whether it was on before.
extern "C" int palisade_autocast_enter(int cuda) {
  auto dt = device_type(cuda);
  int prev = at::autocast::is_autocast_enabled(dt);
  at::autocast::set_autocast_dtype(dt, at::kBFloat16);
  at::autocast::set_autocast_enabled(dt, true);
  at::autocast::increment_nesting();
  return prev;
}

// Undoes palisade_autocast_enter: restores `prev`, and frees the cast-weight cache when the
// outermost region ends.
extern "C" void palisade_autocast_exit(int cuda, int prev) {
  if (at::autocast::decrement_nesting() == 0) {
    at::autocast::clear_cache();
  }
  at::autocast::set_autocast_enabled(device_type(cuda), prev != 0);
}

// Whether autocast is on here for the device type, so that recomputation (remat) runs as the
// forward did.
extern "C" int palisade_autocast_enabled(int cuda) {
  return at::autocast::is_autocast_enabled(device_type(cuda));
}

// The autocast dtype of the device type is bfloat16 (a check for tests).
extern "C" int palisade_autocast_is_bf16(int cuda) {
  return at::autocast::get_autocast_dtype(device_type(cuda)) == at::kBFloat16;
}

// Frees the cast-weight cache now: the bfloat16 copies autocast keeps of parameters until the
// outermost region ends, which would hold every block's copy when blocks are sharded.
extern "C" void palisade_autocast_clear_cache() { at::autocast::clear_cache(); }
