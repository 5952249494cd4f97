// CPU kernels of bias_act and bias_act_grad: at::parallel_for over memory-order blocks,
// inner loops over contiguous elements with compile-time activation and order, which
// the compiler vectorizes for the piecewise-linear activations.
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <type_traits>
#include <vector>

#include "../common/activations.h"
#include "../common/dispatch.h"
#include "../ops/bias_act.h"
#include "half_convert.h"
#include "multiversion.h"

// Inner loops are multiversioned (multiversion.h): a portable wheel still runs AVX2 or
// AVX-512 where the CPU has it (~2x in cache for float32, more for the half types). noinline
// keeps each clone one function, called through its resolver once per row.
#define AF_CPU_CLONES AF_CPU_MULTIVERSION __attribute__((noinline))

namespace alae_fast {
namespace {

template <typename scalar_t, int ACT, int ORDER>
struct BiasActRow {
  using acc_t = at::opmath_type<scalar_t>;
  acc_t alpha, gain, clamp;
  bool has_clamp;

  // The clamp flag becomes a compile-time constant of each loop: a branch left inside
  // would stop the compiler from vectorizing.
  template <bool CLAMP>
  AF_CPU_CLONES void same_bias_loop(const scalar_t* __restrict__ x, const scalar_t* __restrict__ g,
                      scalar_t* __restrict__ y, int64_t n, acc_t bias) const {
    const acc_t a = alpha, k = gain, c = clamp;
    for (int64_t i = 0; i < n; ++i) {
      acc_t gv = ORDER > 0 ? static_cast<acc_t>(g[i]) : acc_t(0);
      y[i] = static_cast<scalar_t>(
          bias_act_elem<ACT, ORDER>(static_cast<acc_t>(x[i]) + bias, gv, a, k, c, CLAMP));
    }
  }

  template <bool CLAMP>
  AF_CPU_CLONES void per_elem_bias_loop(const scalar_t* __restrict__ x, const scalar_t* __restrict__ g,
                          const scalar_t* __restrict__ b, scalar_t* __restrict__ y,
                          int64_t n) const {
    const acc_t a = alpha, k = gain, c = clamp;
    for (int64_t i = 0; i < n; ++i) {
      acc_t gv = ORDER > 0 ? static_cast<acc_t>(g[i]) : acc_t(0);
      acc_t z = static_cast<acc_t>(x[i]) + static_cast<acc_t>(b[i]);
      y[i] = static_cast<scalar_t>(bias_act_elem<ACT, ORDER>(z, gv, a, k, c, CLAMP));
    }
  }

  // float16 rows take their per-element bias already widened: bias_act_cpu_impl widens it
  // once, not once for every row of channels that reuses it.
  using bias_t = std::conditional_t<std::is_same_v<scalar_t, c10::Half>, float, scalar_t>;

  // One run of n contiguous elements sharing a single bias value.
  void same_bias(const scalar_t* x, const scalar_t* g, scalar_t* y, int64_t n, acc_t bias) const {
    if constexpr (std::is_same_v<scalar_t, c10::Half>) {
      in_float_blocks(x, g, y, n, [&](const float* xf, const float* gf, float* yf, int64_t, int64_t m) {
        as_float().same_bias(xf, gf, yf, m, bias);
      });
    } else {
      has_clamp ? same_bias_loop<true>(x, g, y, n, bias) : same_bias_loop<false>(x, g, y, n, bias);
    }
  }

  // One run of n contiguous elements with a bias value each (channels innermost).
  void per_elem_bias(const scalar_t* x, const scalar_t* g, const bias_t* b, scalar_t* y, int64_t n) const {
    if constexpr (std::is_same_v<scalar_t, c10::Half>) {
      in_float_blocks(x, g, y, n, [&](const float* xf, const float* gf, float* yf, int64_t i, int64_t m) {
        as_float().per_elem_bias(xf, gf, b + i, yf, m);
      });
    } else {
      has_clamp ? per_elem_bias_loop<true>(x, g, b, y, n) : per_elem_bias_loop<false>(x, g, b, y, n);
    }
  }

  // float16 runs are widened a block at a time with F16C (half_convert.h), computed by the
  // float32 loops and narrowed back: c10::Half's own conversions are integer code in these
  // clones and left the float16 loops 2.3x slower than the bfloat16 ones.
  BiasActRow<float, ACT, ORDER> as_float() const { return {alpha, gain, clamp, has_clamp}; }

  // fn(x block, g block or null, y block, offset of the block in the run, its length).
  template <typename Fn>
  static void in_float_blocks(const c10::Half* x, const c10::Half* g, c10::Half* y, int64_t n, Fn&& fn) {
    constexpr int64_t kBlock = 512;
    alignas(64) float xf[kBlock], gf[kBlock], yf[kBlock];
    for (int64_t i = 0; i < n; i += kBlock) {
      const int64_t m = std::min(kBlock, n - i);
      half_convert::widen(x + i, xf, m);
      if (g) half_convert::widen(g + i, gf, m);
      fn(xf, g ? gf : nullptr, yf, i, m);
      half_convert::narrow(yf, y + i, m);
    }
  }
};

// Sum of n contiguous values; eight independent partial sums let the compiler vectorize it
// without reassociating a single chain (which it may not do without -ffast-math).
template <typename scalar_t>
AF_CPU_CLONES double row_sum(const scalar_t* v, int64_t n) {
  using acc_t = at::opmath_type<scalar_t>;
  acc_t part[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    for (int k = 0; k < 8; ++k) part[k] += static_cast<acc_t>(v[i + k]);
  }
  double s = 0;
  for (; i < n; ++i) s += static_cast<double>(v[i]);
  for (int k = 0; k < 8; ++k) s += static_cast<double>(part[k]);
  return s;
}

// float16 rows: widened a block at a time with F16C (half_convert.h) and summed as float32.
double row_sum(const c10::Half* v, int64_t n) {
  constexpr int64_t kBlock = 512;
  alignas(64) float f[kBlock];
  double s = 0;
  for (int64_t i = 0; i < n; i += kBlock) {
    const int64_t m = std::min(kBlock, n - i);
    half_convert::widen(v + i, f, m);
    s += row_sum(f, m);
  }
  return s;
}

// Elements of the bias pattern of a channels_last run (b repeated over its pixels): L1-sized.
constexpr int64_t kPatternLen = 1024;

// Fills y; when db is given (gradient ops with a bias), also db[c] = sum of y over channel c
// where the layout lets one pass do it, and returns whether it did.
template <typename scalar_t, int ACT, int ORDER>
bool bias_act_cpu_impl(const BiasActPlan& p, const scalar_t* x, const scalar_t* g, scalar_t* y,
                       scalar_t* db) {
  using acc_t = at::opmath_type<scalar_t>;
  const BiasActRow<scalar_t, ACT, ORDER> row{static_cast<acc_t>(p.alpha), static_cast<acc_t>(p.gain),
                                             static_cast<acc_t>(p.clamp), p.has_clamp};
  const int64_t n = p.x.numel();
  const scalar_t* b = p.b.defined() ? p.b.const_data_ptr<scalar_t>() : nullptr;
  if (b == nullptr) {
    at::parallel_for(0, n, at::internal::GRAIN_SIZE, [&](int64_t lo, int64_t hi) {
      row.same_bias(x + lo, g ? g + lo : nullptr, y + lo, hi - lo, acc_t(0));
    });
    return false;
  }
  const int64_t C = p.channels, inner = p.inner;
  if (inner == 1) {
    // channels_last with dim=1 (or bias on the last dim): each block of C elements takes b whole.
    // Runs of k pixels share one bias pattern, b repeated k times: with b alone, a call per pixel
    // of an RGB image ran 45x slower than the contiguous tensor (8x3x256x256, one thread).
    using bias_t = typename BiasActRow<scalar_t, ACT, ORDER>::bias_t;
    const int64_t k = std::max<int64_t>(1, kPatternLen / C);
    std::vector<bias_t> pattern(static_cast<size_t>(C * k));
    for (int64_t j = 0; j < C * k; ++j) pattern[j] = static_cast<bias_t>(b[j % C]);
    const int64_t pixels = n / C, runs = (pixels + k - 1) / k;
    const int64_t grain = std::max<int64_t>(1, at::internal::GRAIN_SIZE / (C * k));
    at::parallel_for(0, runs, grain, [&](int64_t lo, int64_t hi) {
      for (int64_t r = lo; r < hi; ++r) {
        const int64_t off = r * k * C, len = std::min(k, pixels - r * k) * C;
        row.per_elem_bias(x + off, g ? g + off : nullptr, pattern.data(), y + off, len);
      }
    });
    return false;
  }
  // Rows of `inner` contiguous elements, row r = o * C + c having channel c.
  const int64_t outer = n / (C * inner);
  if (db != nullptr && C >= 4 * at::get_num_threads()) {
    // Each thread owns whole channels (slower to walk than rows in memory order, but it saves
    // the separate pass that reads dz again for db): no races on db, and a summation order that does not
    // depend on the thread count (bit-identical results on any machine).
    const int64_t grain = std::max<int64_t>(1, at::internal::GRAIN_SIZE / (inner * outer));
    at::parallel_for(0, C, grain, [&](int64_t lo, int64_t hi) {
      for (int64_t c = lo; c < hi; ++c) {
        double s = 0;
        for (int64_t o = 0; o < outer; ++o) {
          const int64_t off = (o * C + c) * inner;
          row.same_bias(x + off, g ? g + off : nullptr, y + off, inner, static_cast<acc_t>(b[c]));
          if (db) s += row_sum(y + off, inner);  // the row is still in cache
        }
        if (db) db[c] = static_cast<scalar_t>(s);
      }
    });
    return db != nullptr;
  }
  const int64_t rows = outer * C;
  const int64_t grain = std::max<int64_t>(1, at::internal::GRAIN_SIZE / inner);
  at::parallel_for(0, rows, grain, [&](int64_t lo, int64_t hi) {
    for (int64_t r = lo; r < hi; ++r) {
      const int64_t off = r * inner;
      row.same_bias(x + off, g ? g + off : nullptr, y + off, inner, static_cast<acc_t>(b[r % C]));
    }
  });
  return false;
}

// y (and, for gradient ops, the bias gradient: y summed over every dim but p.dim).
std::tuple<at::Tensor, at::Tensor> run(const BiasActPlan& p, const at::Tensor* g, int order) {
  at::Tensor y = at::empty_like(p.x);
  const bool want_db = g != nullptr && p.b.defined();
  at::Tensor db = want_db ? at::empty({p.channels}, p.x.options()) : at::empty({0}, p.x.options());
  if (p.x.numel() == 0) {
    if (want_db) db.zero_();
    return {y, db};
  }
  at::Tensor gc = g ? with_layout_of(*g, p.x) : at::Tensor();
  bool fused_db = false;
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, p.x.scalar_type(), "bias_act_cpu", [&] {
    const scalar_t* xp = p.x.const_data_ptr<scalar_t>();
    const scalar_t* gp = g ? gc.const_data_ptr<scalar_t>() : nullptr;
    scalar_t* yp = y.mutable_data_ptr<scalar_t>();
    scalar_t* dbp = want_db ? db.mutable_data_ptr<scalar_t>() : nullptr;
    dispatch_act(p.act, [&](auto act) {
      dispatch_order(order, [&](auto ord) {
        fused_db = bias_act_cpu_impl<scalar_t, decltype(act)::value, decltype(ord)::value>(p, xp, gp, yp, dbp);
      });
    });
  });
  if (want_db && !fused_db) db = bias_grad_sum(y, p.dim);
  return {y, db};
}

at::Tensor bias_act_cpu(const at::Tensor& x, const std::optional<at::Tensor>& b, int64_t dim,
                        c10::string_view act, double alpha, double gain,
                        std::optional<double> clamp) {
  BiasActPlan p = plan_bias_act(x, b, dim, std::string_view(act.data(), act.size()), alpha, gain, clamp);
  return std::get<0>(run(p, nullptr, 0));
}

std::tuple<at::Tensor, at::Tensor> bias_act_grad_cpu(
    const at::Tensor& g, const at::Tensor& x, const std::optional<at::Tensor>& b, int64_t dim,
    c10::string_view act, double alpha, double gain, std::optional<double> clamp, int64_t order) {
  check_bias_act_grad(g, x, order);
  BiasActPlan p = plan_bias_act(x, b, dim, std::string_view(act.data(), act.size()), alpha, gain, clamp);
  return run(p, &g, static_cast<int>(order));
}

}  // namespace

TORCH_LIBRARY_IMPL(alae_fast, CPU, m) {
  m.impl("bias_act", &bias_act_cpu);
  m.impl("bias_act_grad", &bias_act_grad_cpu);
}

}  // namespace alae_fast
