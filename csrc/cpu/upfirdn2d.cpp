// CPU kernel of upfirdn2d. The kernel bodies (upfirdn2d_kernels.h) are compiled twice, for
// baseline x86-64 and for AVX2+FMA, since the library itself is built for the baseline;
// the widest one the running CPU supports is picked at run time.
//
// Why not multiversion.h's target_clones, as the other CPU kernels: target_clones clones one
// function, and the functions it calls stay baseline unless inlined. upfirdn2d's row passes
// are reached through function-pointer tables (pick_hrow, chosen per up/down/taps), which
// a clone cannot inline: the pointers would name the baseline row kernels. Compiling the
// whole kernel family once per instruction set, in its own namespace, gives every pointer
// a same-ISA target.
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <type_traits>
#include <vector>

#include "../common/upfirdn2d.h"
#include "../ops/upfirdn2d.h"
#include "half_convert.h"
#include "transpose_tiles.h"

namespace alae_fast {
namespace upfirdn2d_cpu {

// Sizes, factors and padding of one call, as the kernels read them.
struct Geometry {
  int64_t N, C, H, W, Ho, Wo, P;  // P = N * C planes
  int64_t ux, uy, dx, dy, px0, py0;
  int64_t tx, ty;  // taps per axis
  bool separable;
};

// Taps in correlation order (the filter reversed unless flip_filter), gain folded in:
// wx and wy for a separable filter, w2 [ty][tx] for a 2-D one.
template <typename acc_t>
struct Taps {
  std::vector<acc_t> wx, wy, w2;
};

namespace base {
#include "upfirdn2d_kernels.h"
}  // namespace base

#if defined(__x86_64__) && defined(__GNUC__)
#define AF_UFD_HAVE_AVX2 1
#pragma GCC push_options
#pragma GCC target("avx2,fma")
namespace avx2 {
#include "upfirdn2d_kernels.h"
}  // namespace avx2
#pragma GCC pop_options
#endif

namespace {

bool cpu_has_avx2() {
#ifdef AF_UFD_HAVE_AVX2
  static const bool ok = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return ok;
#else
  return false;
#endif
}

// f in correlation order (reversed unless flip_filter), as doubles: [fw] for a 1-D filter,
// [fh][fw] for a 2-D one. fp: the plan's taps, float32, or float64 for float64 x.
template <typename tap_t>
std::vector<double> corr_taps(const UpFirDn2dPlan& p, const tap_t* fp) {
  if (p.separable) {
    std::vector<double> c(static_cast<size_t>(p.fw));
    for (int64_t j = 0; j < p.fw; ++j) c[j] = fp[p.flip_filter ? j : p.fw - 1 - j];
    return c;
  }
  std::vector<double> c(static_cast<size_t>(p.fh * p.fw));
  for (int64_t i = 0; i < p.fh; ++i) {
    for (int64_t j = 0; j < p.fw; ++j) {
      const int64_t src = p.flip_filter ? i * p.fw + j : (p.fh - 1 - i) * p.fw + (p.fw - 1 - j);
      c[i * p.fw + j] = fp[src];
    }
  }
  return c;
}

// A 2-D filter that is exactly an outer product col x row runs on the separable path, which
// does taps_x + taps_y multiplies per output instead of taps_x * taps_y. The products of
// float32 taps are exact in double, so the test is exact: f[i][j] * f[p][q] == f[i][q] * f[p][j]
// for a pivot (p, q). Binomial filters normalised by their (power of two) sum pass it. Float64
// taps pass it only where their products round alike (binomial ones do: their products are
// exact too); the others run the 2-D path, which applies them as given.
bool factor_rank1(const std::vector<double>& c, int64_t fh, int64_t fw, std::vector<double>& col,
                  std::vector<double>& row) {
  int64_t pi = 0, pj = 0;
  for (int64_t i = 0; i < fh; ++i) {
    for (int64_t j = 0; j < fw; ++j) {
      if (std::abs(c[i * fw + j]) > std::abs(c[pi * fw + pj])) pi = i, pj = j;
    }
  }
  const double piv = c[pi * fw + pj];
  if (piv == 0) return false;
  for (int64_t i = 0; i < fh; ++i) {
    for (int64_t j = 0; j < fw; ++j) {
      if (c[i * fw + j] * piv != c[i * fw + pj] * c[pi * fw + j]) return false;
    }
  }
  col.resize(fh);
  row.resize(fw);
  for (int64_t i = 0; i < fh; ++i) col[i] = c[i * fw + pj];
  for (int64_t j = 0; j < fw; ++j) row[j] = c[pi * fw + j] / piv;
  return true;
}

// Taps for the kernels, and whether they run separable (g.separable is set here).
template <typename acc_t>
Taps<acc_t> make_taps(const UpFirDn2dPlan& p, Geometry& g) {
  Taps<acc_t> t;
  const double gain = p.gain;
  g.separable = true;
  if (!p.f.defined()) {
    t.wx = {acc_t(1)};
    t.wy = {static_cast<acc_t>(gain)};
    return t;
  }
  const at::Tensor f = p.f.cpu();
  const std::vector<double> c = f.scalar_type() == at::kDouble ? corr_taps(p, f.const_data_ptr<double>())
                                                                 : corr_taps(p, f.const_data_ptr<float>());
  if (p.separable) {
    for (double v : c) {
      t.wx.push_back(static_cast<acc_t>(v));
      t.wy.push_back(static_cast<acc_t>(v * gain));
    }
    return t;
  }
  std::vector<double> col, row;
  if (factor_rank1(c, p.fh, p.fw, col, row)) {
    for (double v : row) t.wx.push_back(static_cast<acc_t>(v));
    for (double v : col) t.wy.push_back(static_cast<acc_t>(v * gain));
    return t;
  }
  g.separable = false;
  for (double v : c) t.w2.push_back(static_cast<acc_t>(v * gain));
  return t;
}

// NCHW planes of at most kSmallPlane input and output pixels, when there are enough of them
// to fill vectors, run planes-innermost (run_nchw_planes_last). Measured on this project's
// machine, one thread, [32, 32, H, W] float32 (3x3 blur / 2x2 down 2 / 2x2 up 2): the row
// engine's per-plane setup dominated below about 16x16.
constexpr int64_t kSmallPlane = 64;

bool small_planes(const Geometry& g) {
  return g.P >= 16 && g.H * g.W <= kSmallPlane && g.Ho * g.Wo <= kSmallPlane;
}

// A channels_last tensor of at most kFewChannels channels whose planes are not small and whose
// rows the NHWC engine cannot filter by class (a 2-D filter that is not an outer product, other
// factors, longer filters) is transposed to NCHW, run by the row engine and transposed back:
// the per-pixel sums along C pay their setup for a few values. One thread, float32, against
// the NCHW engine on the same values: 8x3x256x256 [1,3,3,1] up 2 took 8.7x its time, down 2
// 12x; through planes 2.8x and 6.2x (the transposes are most of it). Filtered by class, the
// rows run at 0.7-1.4x the NCHW time at 3 to 32 channels (2026-12-06: 32x8x32x32 3x3 blur
// 1.08x, 8x3x128x128 up 2 1.35x, 8x3x256x256 2x2 down 2 1.29x, against 3.35x, 4.46x, 8.19x
// through planes). At 16 channels the transposes cost more than they save.
constexpr int64_t kFewChannels = 8;

bool few_channels(const Geometry& g) {
  return g.C <= kFewChannels && !(g.H * g.W <= kSmallPlane && g.Ho * g.Wo <= kSmallPlane) && !base::nhwc_by_class(g);
}

at::Tensor upfirdn2d_cpu(const at::Tensor& x, const std::optional<at::Tensor>& f,
                         at::IntArrayRef up, at::IntArrayRef down, at::IntArrayRef padding,
                         bool flip_filter, double gain) {
  const UpFirDn2dPlan p = plan_upfirdn2d(x, f, up, down, padding, flip_filter, gain);
  at::Tensor y = upfirdn2d_empty_output(p);
  if (y.numel() == 0) return y;
  if (p.x.numel() == 0) return y.zero_();  // H or W is 0: only padding reaches the output
  Geometry g{p.N, p.C, p.H, p.W, p.Ho, p.Wo, p.N * p.C, p.upx, p.upy, p.downx, p.downy,
                   p.padx0, p.pady0, p.fw, p.fh, p.separable};
  bool via_planes = false;
  at::Tensor yout = y;
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, p.x.scalar_type(), "upfirdn2d_cpu", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    const Taps<acc_t> taps = make_taps<acc_t>(p, g);  // sets g.separable, which the route reads
    via_planes = p.channels_last && few_channels(g);
    at::Tensor xin = p.x;
    if (via_planes) {
      xin = at::empty(p.x.sizes(), p.x.options().memory_format(at::MemoryFormat::Contiguous));
      cpu_layout::transpose_dense(p.x, xin, g.H * g.W, g.C, "upfirdn2d");
      yout = at::empty(y.sizes(), y.options().memory_format(at::MemoryFormat::Contiguous));
    }
    const bool nhwc = p.channels_last && !via_planes;
    const scalar_t* xp = xin.const_data_ptr<scalar_t>();
    scalar_t* yp = yout.mutable_data_ptr<scalar_t>();
    const bool planes_last = !nhwc && small_planes(g);
#ifdef AF_UFD_HAVE_AVX2
    if (cpu_has_avx2()) {
      if (nhwc) avx2::run_nhwc<scalar_t, acc_t>(g, taps, xp, yp);
      else if (planes_last) avx2::run_nchw_planes_last<scalar_t, acc_t>(g, taps, xp, yp);
      else avx2::run_nchw<scalar_t, acc_t>(g, taps, xp, yp);
      return;
    }
#endif
    if (nhwc) base::run_nhwc<scalar_t, acc_t>(g, taps, xp, yp);
    else if (planes_last) base::run_nchw_planes_last<scalar_t, acc_t>(g, taps, xp, yp);
    else base::run_nchw<scalar_t, acc_t>(g, taps, xp, yp);
  });
  if (via_planes) cpu_layout::transpose_dense(yout, y, g.C, g.Ho * g.Wo, "upfirdn2d");
  return y;
}

}  // namespace
}  // namespace upfirdn2d_cpu

TORCH_LIBRARY_IMPL(alae_fast, CPU, m) {
  m.impl("upfirdn2d", &upfirdn2d_cpu::upfirdn2d_cpu);
}

}  // namespace alae_fast
