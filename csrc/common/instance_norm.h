// Per-row (one (n, c) plane) math of instance normalisation, shared by the CPU and CUDA
// kernels of adain and instance_norm_stats.
//
// Forward, for a row a_1..a_L (a = act(x + noise_weight * noise + bias)):
//   mean = sum(a) / L,  std = sqrt(sum((a - mean)^2) / L + eps),  r = 1 / std
//   xhat = (a - mean) * r,  y = xhat * sigma + t      (sigma = 1 + style_scale, t = style_bias)
// The sums are taken about a shift K (the row's first value), which keeps
// sum((a-K)^2)/L - (sum(a-K)/L)^2 free of cancellation when |mean| >> std, and makes a
// constant row give exactly zero variance.
//
// Backward, treating mean and std as OUTPUTS that may carry their own cotangents
// (gm, gs: instance_norm_stats returns them; ALAE's encoder turns them into w):
//   Sg = sum(gy), Sgx = sum(gy * xhat)
//   da = A * gy + B * xhat + D,  with  A = r * sigma,
//        B = (gs - A * Sgx) / L,  D = (gm - A * Sg) / L
//   dz = act'(z) * da
// (d mean / d a_i = 1/L and d std / d a_i = xhat_i / L give the gm and gs terms.)
// The backward of this map (double backward) is derived in alae_fast/ops/instance_norm_grad.py,
// whose names are these: sum_gy = Sg, sum_gy_xhat = Sgx, scale = A, g_mean = gm, g_std = gs.
#pragma once

#include "host_device.h"

namespace alae_fast {

// Own names (host_device.h does not declare sqrt) so this header stands alone.
AF_HD float in_sqrt(float v) { return sqrtf(v); }
AF_HD double in_sqrt(double v) { return sqrt(v); }

// offset = mean - shift, exact up to its own rounding: the forward normalises
// (a - shift) - offset rather than a - mean, which keeps the full precision of a plane whose
// mean is large against its spread (a - mean would carry the rounding error of mean).
template <typename T>
struct RowStats {
  T mean, std, rstd, offset;
};

// Statistics from the shifted sums s1 = sum(a - shift), s2 = sum((a - shift)^2) over L values.
template <typename T>
AF_HD RowStats<T> row_stats(T shift, T s1, T s2, T L, T eps) {
  T m1 = s1 / L;
  T var = s2 / L - m1 * m1;
  // Rounding can leave a tiny negative variance for a (near-)constant row.
  if (var < T(0)) var = T(0);
  RowStats<T> st;
  st.offset = m1;
  st.mean = shift + m1;
  st.std = in_sqrt(var + eps);
  st.rstd = T(1) / st.std;
  return st;
}

// The shift K of a row: its first value when finite, else 0. An inf first value would turn
// every a - K into NaN or -inf, where the plain sums give mean = +-inf as the reference does.
template <typename T>
AF_HD T row_shift(T first) {
  return first - first == T(0) ? first : T(0);
}

template <typename T>
struct RowGradCoefs {
  T A, B, D;
};

// Coefficients of da = A * gy + B * xhat + D for one row (see the header comment).
// sg = sum(gy), sgx = sum(gy * xhat); gm, gs are the cotangents of mean and std (0 if none).
template <typename T>
AF_HD RowGradCoefs<T> row_grad_coefs(T rstd, T sigma, T sg, T sgx, T gm, T gs, T L) {
  RowGradCoefs<T> c;
  c.A = rstd * sigma;
  c.B = (gs - c.A * sgx) / L;
  c.D = (gm - c.A * sg) / L;
  return c;
}

}  // namespace alae_fast
