// upfirdn2d index math shared by the CPU and CUDA kernels (no torch headers).
//
// One axis of upfirdn2d maps input x[0..in) to output y[0..out) as
//   y[o] = sum_t w[t] * u[o*down + t - p0],   u[j] = x[j / up] if j % up == 0 else 0,
// where w is the filter in correlation order (f reversed unless flip_filter). Only taps
// with (o*down + t - p0) % up == 0 touch a real sample: t = t0 + k*up for k = 0, 1, ...
// with t0 = (p0 - o*down) mod up, and those taps read x[i0 + k], i0 = (o*down + t0 - p0) / up.
#pragma once

#include "host_device.h"

namespace alae_fast {

// Floor division and non-negative remainder for a possibly negative numerator, b > 0.
AF_HD int64_t fdiv(int64_t a, int64_t b) {
  int64_t q = a / b;
  return (a % b != 0 && a < 0) ? q - 1 : q;
}
AF_HD int64_t pmod(int64_t a, int64_t b) {
  int64_t r = a % b;
  return r < 0 ? r + b : r;
}

// The polyphase view of output sample o on one axis: first tap t0 and the input index i0
// it reads; taps t0 + k*up read input i0 + k.
struct Phase {
  int64_t t0;
  int64_t i0;
};

AF_HD Phase phase_of(int64_t o, int64_t up, int64_t down, int64_t p0) {
  int64_t t0 = pmod(p0 - o * down, up);
  return Phase{t0, (o * down + t0 - p0) / up};  // exact: the numerator is a multiple of up
}

// Number of taps t0, t0 + up, ... below taps.
AF_HD int64_t phase_taps(int64_t t0, int64_t up, int64_t taps) {
  return t0 >= taps ? 0 : (taps - t0 + up - 1) / up;
}

// Output length of one axis: (in*up + p0 + p1 - taps + down) // down (may be <= 0).
AF_HD int64_t upfirdn_out_size(int64_t in, int64_t up, int64_t down, int64_t p0, int64_t p1,
                               int64_t taps) {
  return fdiv(in * up + p0 + p1 - taps + down, down);
}

}  // namespace alae_fast
