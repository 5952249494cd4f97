// filtered_lrelu geometry and activation-state codes shared by the CPU and CUDA kernels
// (no torch headers).
//
// filtered_lrelu(x) = D(act(U(x + b))) per (n, c) plane, where
//   U: upfirdn2d with fu, up, padding [x0, x1, y0, y1], gain up**2 (upsampled size UH x UW),
//   act: leaky ReLU (slope), times gain, clamped to [-clamp, clamp],
//   D: upfirdn2d with fd, down, no padding (output size OH x OW).
// The backward needs only which branch of act each upsampled element took: a 2-bit code,
// four codes per byte, so the saved state is UH*UW/4 bytes per plane (a float32 copy of the
// upsampled tensor would be 16x that).
#pragma once

#include "host_device.h"
#include "upfirdn2d.h"

namespace alae_fast {

// Branch codes: kNeg -> derivative gain*slope, kPos -> gain, kClamped -> 0. A NaN takes
// kNeg without a clamp (as torch's leaky_relu backward: z > 0 is false) and kClamped with
// one (as torch's clamp backward: -c <= y <= c is false).
enum FlreluCode : int { kFlNeg = 0, kFlPos = 1, kFlClamped = 2 };

struct FlreluGeometry {
  int64_t H, W;    // input plane
  int64_t UH, UW;  // upsampled plane: in*up + p0 + p1 - fu_taps + 1
  int64_t OH, OW;  // output plane: (U - fd_taps + down) // down
  int64_t state_bytes;  // per plane: ceil(UH*UW / 4)
};

AF_HD FlreluGeometry flrelu_geometry(int64_t H, int64_t W, int64_t up, int64_t down, int64_t px0,
                                     int64_t px1, int64_t py0, int64_t py1, int64_t fu_w,
                                     int64_t fu_h, int64_t fd_w, int64_t fd_h) {
  FlreluGeometry g;
  g.H = H, g.W = W;
  g.UW = upfirdn_out_size(W, up, 1, px0, px1, fu_w);
  g.UH = upfirdn_out_size(H, up, 1, py0, py1, fu_h);
  g.OW = upfirdn_out_size(g.UW, 1, down, 0, 0, fd_w);
  g.OH = upfirdn_out_size(g.UH, 1, down, 0, 0, fd_h);
  g.state_bytes = (g.UH > 0 && g.UW > 0) ? (g.UH * g.UW + 3) / 4 : 0;
  return g;
}

// Reads the code of element i of a plane's packed state.
AF_HD int flrelu_code(const unsigned char* state, int64_t i) {
  return (state[i >> 2] >> ((i & 3) * 2)) & 3;
}

}  // namespace alae_fast
