// CPU kernels of filtered_lrelu, filtered_lrelu_masked and filtered_lrelu_grad: at::parallel_for
// over (n, c) planes, each plane through the engine of filtered_lrelu_kernels.h in buffers of
// the thread that owns it. Inputs and outputs whose rows are contiguous are read and written
// with their own strides; others (channels_last) run on contiguous copies (strided_rows).
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <type_traits>
#include <vector>

#include "../ops/filtered_lrelu.h"
#include "filtered_lrelu_kernels.h"
#include "filtered_lrelu_separable.h"
#include "transpose_tiles.h"

namespace alae_fast {
namespace flrelu_cpu {
namespace {

// Correlation-order taps of f (undefined = [1]) with `axis_gain` per axis (its square for 2-D
// taps), reversed again when `adjoint` (the adjoint pass correlates with the reversed taps).
template <typename acc_t>
Filter<acc_t> make_filter(const at::Tensor& f, bool separable, bool flip_filter, double axis_gain, bool adjoint) {
  Filter<acc_t> out;
  const bool reverse = flip_filter == adjoint;  // conv order unless flip_filter, flipped again by adjoint
  if (!f.defined()) {
    out.wx = out.wy = {acc_t(axis_gain)};
    return out;
  }
  at::Tensor t = f.to(at::kDouble).contiguous();
  const double* v = t.data_ptr<double>();
  out.separable = separable;
  out.tx = t.size(-1);
  out.ty = t.size(0);
  if (separable) {
    for (int64_t k = 0; k < out.tx; ++k) out.wx.push_back(acc_t(v[reverse ? out.tx - 1 - k : k] * axis_gain));
    out.wy = out.wx;
  } else {
    const double g2 = axis_gain * axis_gain;
    for (int64_t r = 0; r < out.ty; ++r) {
      for (int64_t c = 0; c < out.tx; ++c) {
        const int64_t rr = reverse ? out.ty - 1 - r : r, cc = reverse ? out.tx - 1 - c : c;
        out.w2.push_back(acc_t(v[rr * out.tx + cc] * g2));
      }
    }
  }
  return out;
}

// A 4-D tensor's plane (n, c) seen through its strides.
template <typename T>
struct PlaneView {
  T* data;
  std::array<int64_t, 4> st;
  T* plane(int64_t n, int64_t c) const { return data + n * st[0] + c * st[1]; }
};

template <typename scalar_t>
PlaneView<scalar_t> view_of(const at::Tensor& t) {
  return {t.data_ptr<scalar_t>(), {t.stride(0), t.stride(1), t.stride(2), t.stride(3)}};
}

template <typename scalar_t, typename acc_t>
void load_plane(const PlaneView<const scalar_t>& v, int64_t n, int64_t c, int64_t h, int64_t w, acc_t bias,
                acc_t* out) {
  const scalar_t* p = v.plane(n, c);
  for (int64_t r = 0; r < h; ++r) {
    const scalar_t* row = p + r * v.st[2];
    acc_t* o = out + r * w;
    if (v.st[3] == 1) {
      for (int64_t k = 0; k < w; ++k) o[k] = static_cast<acc_t>(row[k]) + bias;
    } else {
      for (int64_t k = 0; k < w; ++k) o[k] = static_cast<acc_t>(row[k * v.st[3]]) + bias;
    }
  }
}

template <typename scalar_t, typename acc_t>
void store_plane(const acc_t* in, int64_t h, int64_t w, const PlaneView<scalar_t>& v, int64_t n, int64_t c) {
  scalar_t* p = v.plane(n, c);
  for (int64_t r = 0; r < h; ++r) {
    scalar_t* row = p + r * v.st[2];
    const acc_t* i = in + r * w;
    if (v.st[3] == 1) {
      for (int64_t k = 0; k < w; ++k) row[k] = static_cast<scalar_t>(i[k]);
    } else {
      for (int64_t k = 0; k < w; ++k) row[k * v.st[3]] = static_cast<scalar_t>(i[k]);
    }
  }
}

// A plane of acc_t values with unit x stride is transposed in register blocks
// (transpose_block.h): block(x, y, rows) for x in whole blocks only (so that no block reads or
// writes past a row's end) and y in steps of B, rows = min(B, h - y). Returns the first x left
// to the scalar loop (0 for other planes).
template <typename scalar_t, typename acc_t, typename BlockFn>
AF_FL_INLINE int64_t whole_x_blocks(int64_t x_stride, int64_t h, int64_t w, BlockFn&& block) {
  int64_t x = 0;
  if constexpr (std::is_same_v<scalar_t, acc_t>) {
    constexpr int64_t B = cpu_block::Block<acc_t>::B;
    if (x_stride == 1) {
      for (; x + B <= w; x += B) {
        for (int64_t y = 0; y < h; y += B) block(x, y, std::min(B, h - y));
      }
    }
  }
  return x;
}

// load_plane and store_plane for the separable path, which holds planes transposed:
// out[x * ld + y] = plane[y][x] + bias, with zeros in rows' padding y in [h, ld).
template <typename scalar_t, typename acc_t>
AF_FL_INLINE void load_plane_t(const PlaneView<const scalar_t>& v, int64_t n, int64_t c, int64_t h, int64_t w,
                               acc_t bias, acc_t* out, int64_t ld) {
  const scalar_t* p = v.plane(n, c);
  const int64_t x0 = whole_x_blocks<scalar_t, acc_t>(
      v.st[3], h, w, [&](int64_t x, int64_t y, int64_t rows) AF_FL_INLINE_LAMBDA {
        if constexpr (std::is_same_v<scalar_t, acc_t>) {
          cpu_block::transpose_block<acc_t, true>(p + y * v.st[2] + x, v.st[2], rows, bias, out + x * ld + y, ld,
                                                  cpu_block::Block<acc_t>::B);
        }
      });
  if (x0 > 0) {  // the blocks wrote zeros up to padded(h, B); the rest of each row's padding
    for (int64_t x = 0; x < x0; ++x) {
      for (int64_t y = padded(h, cpu_block::Block<acc_t>::B); y < ld; ++y) out[x * ld + y] = acc_t(0);
    }
  }
  for (int64_t x = x0; x < w; ++x) {
    const scalar_t* col = p + x * v.st[3];
    acc_t* o = out + x * ld;
    for (int64_t y = 0; y < h; ++y) o[y] = static_cast<acc_t>(col[y * v.st[2]]) + bias;
    for (int64_t y = h; y < ld; ++y) o[y] = acc_t(0);
  }
}

// plane[y][x] = in[x * ld + y] for y < h, x < w.
template <typename scalar_t, typename acc_t>
AF_FL_INLINE void store_plane_t(const acc_t* in, int64_t ld, int64_t h, int64_t w, const PlaneView<scalar_t>& v,
                                int64_t n, int64_t c) {
  scalar_t* p = v.plane(n, c);
  const int64_t x0 = whole_x_blocks<scalar_t, acc_t>(
      v.st[3], h, w, [&](int64_t x, int64_t y, int64_t rows) AF_FL_INLINE_LAMBDA {
        if constexpr (std::is_same_v<scalar_t, acc_t>) {
          cpu_block::transpose_block<acc_t, false>(in + x * ld + y, ld, cpu_block::Block<acc_t>::B, acc_t(0),
                                                   p + y * v.st[2] + x, v.st[2], rows);
        }
      });
  for (int64_t y = 0; y < h; ++y) {
    scalar_t* row = p + y * v.st[2];
    for (int64_t x = x0; x < w; ++x) row[x * v.st[3]] = static_cast<scalar_t>(in[x * ld + y]);
  }
}

// The upsampled plane's codes live padded, [h][ld], while the state packs them [h][w]:
// compact_rows moves row y from y * ld to y * w (in place, front to back), spread_rows back
// (back to front); the padding bytes spread_rows leaves are stale codes, which act on the
// zeros of the plane's padding columns only.
inline void compact_rows(uint8_t* codes, int64_t h, int64_t w, int64_t ld) {
  for (int64_t y = 1; y < h; ++y) std::memmove(codes + y * w, codes + y * ld, size_t(w));
}

inline void spread_rows(uint8_t* codes, int64_t h, int64_t w, int64_t ld) {
  for (int64_t y = h - 1; y >= 1; --y) std::memmove(codes + y * ld, codes + y * w, size_t(w));
}

// The axes of the forward's two passes and of their adjoints (the adjoint of an axis with
// taps T and left pad p0 has up and down swapped and left pad T - 1 - p0).
struct Passes {
  Axis ux, uy, dx, dy;  // U: input -> upsampled; D: upsampled -> output
};

Passes passes_of(const FilteredLreluPlan& p) {
  const FlreluGeometry& g = p.geo;
  return {Axis{g.W, g.UW, p.up, 1, p.px0, p.fu_w}, Axis{g.H, g.UH, p.up, 1, p.py0, p.fu_h},
          Axis{g.UW, g.OW, 1, p.down, 0, p.fd_w}, Axis{g.UH, g.OH, 1, p.down, 0, p.fd_h}};
}

Axis adjoint(const Axis& a) { return Axis{a.n_out, a.n_in, a.down, a.up, a.taps - 1 - a.p0, a.taps}; }

int64_t grain_for(int64_t plane_elems) { return std::max<int64_t>(1, 32768 / std::max<int64_t>(1, plane_elems)); }

// Per-thread buffers for one plane: input, upsampled, output, codes and pass scratch.
template <typename acc_t>
struct Work {
  std::vector<acc_t> in, up, out;
  std::vector<uint8_t> codes;
  Scratch<acc_t> s;
  Work(int64_t n_in, int64_t n_up, int64_t n_out) : in(n_in), up(n_up), out(n_out), codes(n_up) {}
};

// Planes [begin, end) of the forward on the separable path (one multiversioned function, the
// whole plane pipeline inlined into it: its lambdas too, which would otherwise be compiled
// for the baseline instruction set, as functions of their own).
template <typename scalar_t, typename acc_t, bool CLAMP>
AF_FL_CLONES void forward_planes_separable(const SeparablePlan<acc_t>& s, const FilteredLreluPlan& p,
                                           const PlaneView<const scalar_t>& xv, const scalar_t* bp,
                                           const PlaneView<scalar_t>& yv, uint8_t* sp, int64_t begin, int64_t end) {
  std::vector<acc_t> P(s.p_size()), Q(s.q_size());
  std::vector<uint8_t> codes(s.h_m * padded(s.w_m, kLanes<acc_t>));
  const acc_t gain = acc_t(p.gain), slope = acc_t(p.slope), c = acc_t(p.clamp);
  for (int64_t plane = begin; plane < end; ++plane) {
    const int64_t n = plane / p.C, ch = plane % p.C;
    const acc_t bias = bp ? static_cast<acc_t>(bp[ch]) : acc_t(0);
    separable_plane(
        s, P.data(), Q.data(),
        [&](acc_t* dst, int64_t ld) AF_FL_INLINE_LAMBDA {
          load_plane_t(xv, n, ch, s.h_in, s.w_in, bias, dst, ld);
        },
        [&](acc_t* up, int64_t ld) AF_FL_INLINE_LAMBDA {
          activate_values<acc_t, CLAMP>(up, codes.data(), s.h_m * ld, gain, slope, c);
          compact_rows(codes.data(), s.h_m, s.w_m, ld);
        },
        [&](const acc_t* src, int64_t ld) AF_FL_INLINE_LAMBDA {
          store_plane_t(src, ld, s.h_o, s.w_o, yv, n, ch);
        });
    pack_codes(codes.data(), s.h_m * s.w_m, sp + plane * p.geo.state_bytes);
  }
}

template <typename scalar_t>
void forward_impl(const FilteredLreluPlan& p, const at::Tensor& x, const at::Tensor& b, at::Tensor& y,
                  at::Tensor& state) {
  using acc_t = at::opmath_type<scalar_t>;
  const FlreluGeometry g = p.geo;
  const Passes ps = passes_of(p);
  const auto fu = make_filter<acc_t>(p.fu, p.fu_separable, p.flip_filter, double(p.up), false);
  const auto fd = make_filter<acc_t>(p.fd, p.fd_separable, p.flip_filter, 1.0, false);
  const PlaneView<const scalar_t> xv{x.data_ptr<scalar_t>(), {x.stride(0), x.stride(1), x.stride(2), x.stride(3)}};
  const PlaneView<scalar_t> yv = view_of<scalar_t>(y);
  const scalar_t* bp = b.defined() ? b.data_ptr<scalar_t>() : nullptr;
  uint8_t* sp = state.data_ptr<uint8_t>();
  const acc_t gain = acc_t(p.gain), slope = acc_t(p.slope), c = acc_t(p.clamp);
  const int64_t n_up = g.UH * g.UW;
  if (fu.separable && fd.separable) {
    const auto s = separable_plan<acc_t>(ps.ux, ps.uy, fu.wx, ps.dy, ps.dx, fd.wx);
    at::parallel_for(0, p.N * p.C, grain_for(n_up), [&](int64_t begin, int64_t end) {
      if (p.has_clamp) {
        forward_planes_separable<scalar_t, acc_t, true>(s, p, xv, bp, yv, sp, begin, end);
      } else {
        forward_planes_separable<scalar_t, acc_t, false>(s, p, xv, bp, yv, sp, begin, end);
      }
    });
    return;
  }
  at::parallel_for(0, p.N * p.C, grain_for(n_up), [&](int64_t begin, int64_t end) {
    Work<acc_t> w(g.H * g.W, n_up, g.OH * g.OW);
    for (int64_t plane = begin; plane < end; ++plane) {
      const int64_t n = plane / p.C, ch = plane % p.C;
      load_plane(xv, n, ch, g.H, g.W, bp ? static_cast<acc_t>(bp[ch]) : acc_t(0), w.in.data());
      run_pass(w.in.data(), ps.ux, ps.uy, fu, w.up.data(), w.s);
      if (p.has_clamp) {
        activate<acc_t, true>(w.up.data(), w.codes.data(), n_up, gain, slope, c);
      } else {
        activate<acc_t, false>(w.up.data(), w.codes.data(), n_up, gain, slope, c);
      }
      pack_codes(w.codes.data(), n_up, sp + plane * g.state_bytes);
      run_pass(w.up.data(), ps.dx, ps.dy, fd, w.out.data(), w.s);
      store_plane(w.out.data(), g.OH, g.OW, yv, n, ch);
    }
  });
}

// One pass of a masked plane: resample by `first`, apply the saved lrelu mask (gain, slope),
// resample by `second`. filtered_lrelu_masked runs it forward (up, then down); the gradient
// runs the adjoint passes in reverse order, from the output-sized dy to the input-sized dx.
template <typename acc_t>
struct MaskedPass {
  Axis ax, ay;
  Filter<acc_t> f;
  int64_t h, w;  // the plane size this pass reads (first) or writes (second)
};

// Planes [begin, end) of masked_planes on the separable path.
template <typename scalar_t, typename acc_t>
AF_FL_CLONES void masked_planes_separable(const SeparablePlan<acc_t>& s, const FilteredLreluPlan& p,
                                          const PlaneView<const scalar_t>& iv, const uint8_t* sp,
                                          const PlaneView<scalar_t>& ov, double* plane_sums, int64_t begin,
                                          int64_t end) {
  std::vector<acc_t> P(s.p_size()), Q(s.q_size());
  std::vector<uint8_t> codes(s.h_m * padded(s.w_m, kLanes<acc_t>));
  const acc_t gain = acc_t(p.gain), gs = acc_t(p.gain * p.slope);
  for (int64_t plane = begin; plane < end; ++plane) {
    const int64_t n = plane / p.C, ch = plane % p.C;
    unpack_codes(sp + plane * p.geo.state_bytes, s.h_m * s.w_m, codes.data());
    double sum = 0;
    separable_plane(
        s, P.data(), Q.data(),
        [&](acc_t* dst, int64_t ld) AF_FL_INLINE_LAMBDA {
          load_plane_t(iv, n, ch, s.h_in, s.w_in, acc_t(0), dst, ld);
        },
        [&](acc_t* up, int64_t ld) AF_FL_INLINE_LAMBDA {
          spread_rows(codes.data(), s.h_m, s.w_m, ld);
          mask_values(up, codes.data(), s.h_m * ld, gain, gs);
        },
        [&](const acc_t* src, int64_t ld) AF_FL_INLINE_LAMBDA {
          store_plane_t(src, ld, s.h_o, s.w_o, ov, n, ch);
          if (plane_sums) {
            for (int64_t x = 0; x < s.w_o; ++x) {
              for (int64_t y = 0; y < s.h_o; ++y) sum += double(src[x * ld + y]);
            }
          }
        });
    if (plane_sums) plane_sums[plane] = sum;
  }
}

template <typename scalar_t, typename acc_t>
void masked_planes(const FilteredLreluPlan& p, const at::Tensor& in, const at::Tensor& state,
                   const MaskedPass<acc_t>& first, const MaskedPass<acc_t>& second, at::Tensor& out,
                   double* plane_sums) {
  const FlreluGeometry g = p.geo;
  const PlaneView<const scalar_t> iv{in.data_ptr<scalar_t>(), {in.stride(0), in.stride(1), in.stride(2), in.stride(3)}};
  const PlaneView<scalar_t> ov = view_of<scalar_t>(out);
  const uint8_t* sp = state.data_ptr<uint8_t>();
  const acc_t gain = acc_t(p.gain), gs = acc_t(p.gain * p.slope);
  const int64_t n_up = g.UH * g.UW;
  if (first.f.separable && second.f.separable) {
    const auto s = separable_plan<acc_t>(first.ax, first.ay, first.f.wx, second.ay, second.ax, second.f.wx);
    at::parallel_for(0, p.N * p.C, grain_for(n_up), [&](int64_t begin, int64_t end) {
      masked_planes_separable<scalar_t, acc_t>(s, p, iv, sp, ov, plane_sums, begin, end);
    });
    return;
  }
  at::parallel_for(0, p.N * p.C, grain_for(n_up), [&](int64_t begin, int64_t end) {
    Work<acc_t> w(first.h * first.w, n_up, second.h * second.w);
    for (int64_t plane = begin; plane < end; ++plane) {
      const int64_t n = plane / p.C, ch = plane % p.C;
      load_plane(iv, n, ch, first.h, first.w, acc_t(0), w.in.data());
      run_pass(w.in.data(), first.ax, first.ay, first.f, w.up.data(), w.s);
      unpack_codes(sp + plane * g.state_bytes, n_up, w.codes.data());
      apply_mask(w.up.data(), w.codes.data(), n_up, gain, gs);
      run_pass(w.up.data(), second.ax, second.ay, second.f, w.out.data(), w.s);
      store_plane(w.out.data(), second.h, second.w, ov, n, ch);
      if (plane_sums) {
        double s = 0;
        for (int64_t k = 0; k < second.h * second.w; ++k) s += double(w.out[k]);
        plane_sums[plane] = s;
      }
    }
  });
}

template <typename scalar_t>
void masked_impl(const FilteredLreluPlan& p, const at::Tensor& v, const at::Tensor& state, at::Tensor& out) {
  using acc_t = at::opmath_type<scalar_t>;
  const FlreluGeometry g = p.geo;
  const Passes ps = passes_of(p);
  const MaskedPass<acc_t> up{ps.ux, ps.uy, make_filter<acc_t>(p.fu, p.fu_separable, p.flip_filter, double(p.up), false),
                             g.H, g.W};
  const MaskedPass<acc_t> down{ps.dx, ps.dy, make_filter<acc_t>(p.fd, p.fd_separable, p.flip_filter, 1.0, false),
                               g.OH, g.OW};
  masked_planes<scalar_t>(p, v, state, up, down, out, nullptr);
}

// The adjoint of masked_impl; plane_sums (when given) receives each dx plane's sum, for the bias.
template <typename scalar_t>
void grad_impl(const FilteredLreluPlan& p, const at::Tensor& dy, const at::Tensor& state, at::Tensor& dx,
               double* plane_sums) {
  using acc_t = at::opmath_type<scalar_t>;
  const FlreluGeometry g = p.geo;
  const Passes ps = passes_of(p);
  const MaskedPass<acc_t> down_t{adjoint(ps.dx), adjoint(ps.dy),
                                 make_filter<acc_t>(p.fd, p.fd_separable, p.flip_filter, 1.0, true), g.OH, g.OW};
  const MaskedPass<acc_t> up_t{adjoint(ps.ux), adjoint(ps.uy),
                               make_filter<acc_t>(p.fu, p.fu_separable, p.flip_filter, double(p.up), true), g.H, g.W};
  masked_planes<scalar_t>(p, dy, state, down_t, up_t, dx, plane_sums);
}

// A channels_last plane's values lie C apart: loaded and stored plane by plane, each value costs
// a cache line of its own, and the op ran 1.7-1.9x slower than on the contiguous tensor
// (4x512x36x36, up 2, one thread). So a tensor whose rows are strided is read from a
// contiguous copy and written to a contiguous buffer that is then copied into the output,
// which keeps x's layout (filtered_lrelu_empty). A dense channels_last tensor is converted by
// cpu_layout::transpose_dense (transpose_tiles.h), not by torch's own copy.
bool strided_rows(const at::Tensor& t) { return t.size(3) > 1 && t.stride(3) != 1; }

using cpu_layout::dense_channels_last;

void transpose_dense(const at::Tensor& src, at::Tensor& dst, int64_t R, int64_t K) {
  cpu_layout::transpose_dense(src, dst, R, K, "filtered_lrelu");
}

at::Tensor contiguous_rows(const at::Tensor& t) {
  if (!strided_rows(t)) return t;
  if (!dense_channels_last(t)) return t.contiguous();
  at::Tensor out = at::empty(t.sizes(), t.options().memory_format(at::MemoryFormat::Contiguous));
  transpose_dense(t, out, t.size(2) * t.size(3), t.size(1));
  return out;
}

// The tensor a kernel writes for `out`: out itself, or a contiguous buffer to copy into it.
at::Tensor row_buffer(const at::Tensor& out) {
  return strided_rows(out) ? at::empty(out.sizes(), out.options().memory_format(at::MemoryFormat::Contiguous)) : out;
}

void copy_back(at::Tensor& out, const at::Tensor& buffer) {
  if (buffer.is_same(out)) return;
  if (dense_channels_last(out)) {
    transpose_dense(buffer, out, out.size(1), out.size(2) * out.size(3));
  } else {
    out.copy_(buffer);
  }
}

#define AF_FL_DISPATCH(T, NAME, ...) \
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, T, NAME, __VA_ARGS__)

std::tuple<at::Tensor, at::Tensor> filtered_lrelu_cpu(const at::Tensor& x, const std::optional<at::Tensor>& fu,
                                                      const std::optional<at::Tensor>& fd,
                                                      const std::optional<at::Tensor>& b, int64_t up, int64_t down,
                                                      at::IntArrayRef padding, double gain, double slope,
                                                      std::optional<double> clamp, bool flip_filter) {
  const FilteredLreluPlan p =
      plan_filtered_lrelu_forward(x, fu, fd, b, up, down, padding, gain, slope, clamp, flip_filter);
  at::Tensor y = filtered_lrelu_empty(x, p.geo.OH, p.geo.OW);
  at::Tensor state = at::empty({p.N, p.C, p.geo.state_bytes}, x.options().dtype(at::kByte));
  const at::Tensor bb = b.has_value() && b->defined() ? b->contiguous() : at::Tensor();
  if (y.numel() == 0) return {y, state};
  const at::Tensor xr = contiguous_rows(x);
  at::Tensor yr = row_buffer(y);
  AF_FL_DISPATCH(x.scalar_type(), "filtered_lrelu_cpu", [&] { forward_impl<scalar_t>(p, xr, bb, yr, state); });
  copy_back(y, yr);
  return {y, state};
}

at::Tensor filtered_lrelu_masked_cpu(const at::Tensor& v, const at::Tensor& state, const std::optional<at::Tensor>& fu,
                                     const std::optional<at::Tensor>& fd, int64_t up, int64_t down,
                                     at::IntArrayRef padding, double gain, double slope, bool flip_filter) {
  const FilteredLreluPlan p =
      plan_filtered_lrelu_masked(v, state, fu, fd, up, down, padding, gain, slope, flip_filter);
  at::Tensor out = filtered_lrelu_empty(v, p.geo.OH, p.geo.OW);
  if (out.numel() == 0) return out;
  const at::Tensor st = state.contiguous();
  const at::Tensor vr = contiguous_rows(v);
  at::Tensor outr = row_buffer(out);
  AF_FL_DISPATCH(v.scalar_type(), "filtered_lrelu_masked_cpu", [&] { masked_impl<scalar_t>(p, vr, st, outr); });
  copy_back(out, outr);
  return out;
}

std::tuple<at::Tensor, at::Tensor> filtered_lrelu_grad_cpu(const at::Tensor& dy, const at::Tensor& state,
                                                           const std::optional<at::Tensor>& fu,
                                                           const std::optional<at::Tensor>& fd,
                                                           at::IntArrayRef in_size, int64_t up, int64_t down,
                                                           at::IntArrayRef padding, double gain, double slope,
                                                           bool flip_filter, bool bias_grad) {
  const FilteredLreluPlan p =
      plan_filtered_lrelu_grad(dy, state, fu, fd, in_size, up, down, padding, gain, slope, flip_filter);
  at::Tensor dx = filtered_lrelu_empty(dy, p.geo.H, p.geo.W);
  at::Tensor sums = at::zeros({bias_grad ? p.N * p.C : 0}, dy.options().dtype(at::kDouble));
  if (dx.numel() > 0) {
    const at::Tensor st = state.contiguous();
    double* sp = bias_grad ? sums.data_ptr<double>() : nullptr;
    const at::Tensor dyr = contiguous_rows(dy);
    at::Tensor dxr = row_buffer(dx);
    AF_FL_DISPATCH(dy.scalar_type(), "filtered_lrelu_grad_cpu", [&] { grad_impl<scalar_t>(p, dyr, st, dxr, sp); });
    copy_back(dx, dxr);
  }
  at::Tensor db = bias_grad ? sums.view({p.N, p.C}).sum(0).to(dy.scalar_type()) : dy.new_empty({0});
  return {dx, db};
}

}  // namespace
}  // namespace flrelu_cpu

TORCH_LIBRARY_IMPL(alae_fast, CPU, m) {
  m.impl("filtered_lrelu", &flrelu_cpu::filtered_lrelu_cpu);
  m.impl("filtered_lrelu_masked", &flrelu_cpu::filtered_lrelu_masked_cpu);
  m.impl("filtered_lrelu_grad", &flrelu_cpu::filtered_lrelu_grad_cpu);
}

}  // namespace alae_fast
