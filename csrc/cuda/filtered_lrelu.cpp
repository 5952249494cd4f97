// CUDA registration of filtered_lrelu and its gradient ops: checks and geometry on the host
// (shared with the CPU kernels), the tile plan (filtered_lrelu_tile.h), the kernels in
// filtered_lrelu.cu.
#include <ATen/ATen.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include "../ops/filtered_lrelu.h"
#include "dtype_code.h"
#include "filtered_lrelu.cuh"
#include "launch_limits.cuh"

namespace alae_fast {
namespace {

// Correlation-order taps on the device: f reversed unless flip_filter, reversed once more for
// an adjoint pass; a separable filter as [wx, wy]. Undefined for the identity.
at::Tensor device_taps(const at::Tensor& f, bool separable, bool flip_filter, bool adjoint) {
  if (!f.defined()) return f;
  at::Tensor t = flip_filter == adjoint ? f.flip(separable ? std::vector<int64_t>{0} : std::vector<int64_t>{0, 1}) : f;
  return separable ? at::cat({t, t}).contiguous() : t.contiguous();
}

FlPassArgs pass_args(FlAxisArgs ax, FlAxisArgs ay, const at::Tensor& taps, bool separable, double scale) {
  return FlPassArgs{ax, ay, taps.defined() ? taps.const_data_ptr() : nullptr, separable || !taps.defined(),
                    scale};
}

FlAxisArgs adjoint(const FlAxisArgs& a) { return FlAxisArgs{a.n_out, a.n_in, a.down, a.up, a.taps - 1 - a.p0, a.taps}; }

struct Axes {
  FlAxisArgs ux, uy, dx, dy;
};

Axes axes_of(const FilteredLreluPlan& p) {
  const FlreluGeometry& g = p.geo;
  return {FlAxisArgs{g.W, g.UW, p.up, 1, p.px0, p.fu_w}, FlAxisArgs{g.H, g.UH, p.up, 1, p.py0, p.fu_h},
          FlAxisArgs{g.UW, g.OW, 1, p.down, 0, p.fd_w}, FlAxisArgs{g.UH, g.OH, 1, p.down, 0, p.fd_h}};
}

void strides_of(const at::Tensor& t, int64_t* st) {
  for (int i = 0; i < 4; ++i) st[i] = t.stride(i);
}

at::Tensor workspace(const at::Tensor& like, const FilteredLreluPlan& p) {
  const auto acc = like.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
  return at::empty({p.N * p.C, p.geo.UH, p.geo.UW}, like.options().dtype(acc));
}

// Shared memory per block of the fused kernel: the 48 KiB every CUDA device gives without
// opting in, so no launch depends on the device's larger limits.
constexpr int64_t kFusedSmemBytes = 48 * 1024;

FlTileAxis tile_axis(const FlAxisArgs& first, const FlAxisArgs& second) {
  return FlTileAxis{first.n_in, first.n_out, second.n_out, first.up, first.p0, first.taps,
                    second.down, second.p0, second.taps};
}

// The fused path (filtered_lrelu_tile.h); false when no tile's buffers fit in shared memory or
// an extent needs more than the phases' 32-bit coordinates.
bool run_fused(const FilteredLreluPlan& p, const at::Tensor& in, const at::Tensor& bias, const FlPassArgs& pass1,
               int mode, at::Tensor& state, const FlPassArgs& pass2, at::Tensor& out, cudaStream_t stream) {
  FlFusedArgs a{};
  a.ax = tile_axis(pass1.ax, pass2.ax);
  a.ay = tile_axis(pass1.ay, pass2.ay);
  if (!fl_fits_32bit(a.ax) || !fl_fits_32bit(a.ay)) return false;
  const int64_t acc_size = in.scalar_type() == at::kDouble ? 8 : 4;
  a.plan = fl_choose_tile(a.ay, a.ax, pass1.separable, pass2.separable, mode == 0, acc_size, kFusedSmemBytes);
  if (a.plan.th == 0) return false;
  // One block per tile along grid x: more tiles than it holds (1x1 tiles of a huge plane)
  // take the unfused path, whose grid-stride loops have no such limit.
  if (a.plan.tiles_y * a.plan.tiles_x > kMaxGridX) return false;
  a.taps1 = pass1.taps, a.sep1 = pass1.separable, a.scale1 = pass1.scale;
  a.taps2 = pass2.taps, a.sep2 = pass2.separable, a.scale2 = pass2.scale;
  a.mode = mode, a.gain = p.gain, a.slope = p.slope, a.clamp = p.clamp, a.has_clamp = p.has_clamp;
  a.dtype = dtype_code(in.scalar_type(), "filtered_lrelu");
  a.in = in.const_data_ptr();
  strides_of(in, a.in_st);
  a.bias = bias.defined() ? bias.const_data_ptr() : nullptr;
  a.out = out.mutable_data_ptr();
  strides_of(out, a.out_st);
  a.codes = state.mutable_data_ptr<unsigned char>();
  a.state_bytes = p.geo.state_bytes;
  a.N = p.N, a.C = p.C;
  C10_CUDA_CHECK(filtered_lrelu_fused_launch(a, stream));
  return true;
}

// in -> pass1 -> pointwise (mode) -> pass2 -> out: fused where the tile fits, else in two
// stages through an upsampled-size workspace.
void run(const FilteredLreluPlan& p, const at::Tensor& in, const at::Tensor& bias, const FlPassArgs& pass1,
         int mode, at::Tensor& state, const FlPassArgs& pass2, at::Tensor& out) {
  cudaStream_t stream = c10::cuda::getCurrentCUDAStream(in.device().index()).stream();
  if (run_fused(p, in, bias, pass1, mode, state, pass2, out, stream)) return;
  at::Tensor work = workspace(in, p);
  FlStage1Args a{};
  a.dtype = dtype_code(in.scalar_type(), "filtered_lrelu");
  a.in = in.const_data_ptr();
  strides_of(in, a.in_st);
  a.bias = bias.defined() ? bias.const_data_ptr() : nullptr;
  a.N = p.N, a.C = p.C, a.pass = pass1, a.work = work.mutable_data_ptr(), a.mode = mode;
  a.codes = state.mutable_data_ptr<unsigned char>();
  a.state_bytes = p.geo.state_bytes;
  a.gain = p.gain, a.slope = p.slope, a.clamp = p.clamp, a.has_clamp = p.has_clamp;
  C10_CUDA_CHECK(filtered_lrelu_stage1_launch(a, stream));
  FlStage2Args b{};
  b.dtype = a.dtype;
  b.work = work.const_data_ptr();
  b.out = out.mutable_data_ptr();
  strides_of(out, b.out_st);
  b.N = p.N, b.C = p.C, b.pass = pass2;
  C10_CUDA_CHECK(filtered_lrelu_stage2_launch(b, stream));
}

// The forward's state [N, C, state_bytes], zeroed: the fused kernel ORs codes into it as 32-bit
// words, so its storage is padded to a multiple of 4 bytes (and starts 4-byte aligned, as
// every fresh CUDA allocation does).
at::Tensor zeroed_state(const at::Tensor& x, const FilteredLreluPlan& p) {
  const int64_t n = p.N * p.C * p.geo.state_bytes;
  at::Tensor buf = at::zeros({(n + 3) / 4 * 4}, x.options().dtype(at::kByte));
  return buf.narrow(0, 0, n).view({p.N, p.C, p.geo.state_bytes});
}

std::tuple<at::Tensor, at::Tensor> filtered_lrelu_cuda(const at::Tensor& x, const std::optional<at::Tensor>& fu,
                                                       const std::optional<at::Tensor>& fd,
                                                       const std::optional<at::Tensor>& b, int64_t up, int64_t down,
                                                       at::IntArrayRef padding, double gain, double slope,
                                                       std::optional<double> clamp, bool flip_filter) {
  const c10::cuda::CUDAGuard guard(x.device());
  const FilteredLreluPlan p =
      plan_filtered_lrelu_forward(x, fu, fd, b, up, down, padding, gain, slope, clamp, flip_filter);
  at::Tensor y = filtered_lrelu_empty(x, p.geo.OH, p.geo.OW);
  at::Tensor state = zeroed_state(x, p);
  if (y.numel() == 0) return {y, state};
  const Axes ax = axes_of(p);
  const at::Tensor tu = device_taps(p.fu, p.fu_separable, p.flip_filter, false);
  const at::Tensor td = device_taps(p.fd, p.fd_separable, p.flip_filter, false);
  const at::Tensor bb = b.has_value() && b->defined() ? b->contiguous() : at::Tensor();
  run(p, x, bb, pass_args(ax.ux, ax.uy, tu, p.fu_separable, double(up * up)), 0, state,
      pass_args(ax.dx, ax.dy, td, p.fd_separable, 1.0), y);
  return {y, state};
}

at::Tensor filtered_lrelu_masked_cuda(const at::Tensor& v, const at::Tensor& state,
                                      const std::optional<at::Tensor>& fu, const std::optional<at::Tensor>& fd,
                                      int64_t up, int64_t down, at::IntArrayRef padding, double gain, double slope,
                                      bool flip_filter) {
  const c10::cuda::CUDAGuard guard(v.device());
  const FilteredLreluPlan p =
      plan_filtered_lrelu_masked(v, state, fu, fd, up, down, padding, gain, slope, flip_filter);
  at::Tensor out = filtered_lrelu_empty(v, p.geo.OH, p.geo.OW);
  if (out.numel() == 0) return out;
  const Axes ax = axes_of(p);
  const at::Tensor tu = device_taps(p.fu, p.fu_separable, p.flip_filter, false);
  const at::Tensor td = device_taps(p.fd, p.fd_separable, p.flip_filter, false);
  at::Tensor st = state.contiguous();
  run(p, v, at::Tensor(), pass_args(ax.ux, ax.uy, tu, p.fu_separable, double(up * up)), 1, st,
      pass_args(ax.dx, ax.dy, td, p.fd_separable, 1.0), out);
  return out;
}

std::tuple<at::Tensor, at::Tensor> filtered_lrelu_grad_cuda(const at::Tensor& dy, const at::Tensor& state,
                                                            const std::optional<at::Tensor>& fu,
                                                            const std::optional<at::Tensor>& fd,
                                                            at::IntArrayRef in_size, int64_t up, int64_t down,
                                                            at::IntArrayRef padding, double gain, double slope,
                                                            bool flip_filter, bool bias_grad) {
  const c10::cuda::CUDAGuard guard(dy.device());
  const FilteredLreluPlan p =
      plan_filtered_lrelu_grad(dy, state, fu, fd, in_size, up, down, padding, gain, slope, flip_filter);
  at::Tensor dx = filtered_lrelu_empty(dy, p.geo.H, p.geo.W);
  if (dx.numel() > 0) {
    const Axes ax = axes_of(p);
    const at::Tensor tu = device_taps(p.fu, p.fu_separable, p.flip_filter, true);
    const at::Tensor td = device_taps(p.fd, p.fd_separable, p.flip_filter, true);
    at::Tensor st = state.contiguous();
    run(p, dy, at::Tensor(), pass_args(adjoint(ax.dx), adjoint(ax.dy), td, p.fd_separable, 1.0), 1, st,
        pass_args(adjoint(ax.ux), adjoint(ax.uy), tu, p.fu_separable, double(up * up)), dx);
  }
  at::Tensor db;
  if (!bias_grad) {
    db = dy.new_empty({0});
  } else {
    const bool half = dy.scalar_type() == at::kHalf || dy.scalar_type() == at::kBFloat16;
    db = half ? dx.sum({0, 2, 3}, false, at::kFloat).to(dy.scalar_type()) : dx.sum({0, 2, 3});
  }
  return {dx, db};
}

}  // namespace

TORCH_LIBRARY_IMPL(alae_fast, CUDA, m) {
  m.impl("filtered_lrelu", &filtered_lrelu_cuda);
  m.impl("filtered_lrelu_masked", &filtered_lrelu_masked_cuda);
  m.impl("filtered_lrelu_grad", &filtered_lrelu_grad_cuda);
}

}  // namespace alae_fast
