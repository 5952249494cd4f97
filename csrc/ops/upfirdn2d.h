// upfirdn2d: argument checks and the geometry shared by the CPU and CUDA kernels.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/core/SymIntArrayRef.h>

#include <optional>

namespace alae_fast {

// Bounds that keep every size and index the kernels form within int64 (CPU) and the tile
// arithmetic within int32 (CUDA), far beyond any meaningful resampling: a factor of 2^16 or
// a padding of 2^30 already makes outputs of 2^16 or 2^30 samples per input sample. Shared by
// upfirdn2d and filtered_lrelu (whose up/down passes are upfirdn2d's geometry).
constexpr int64_t kMaxFactor = int64_t(1) << 16;
constexpr int64_t kMaxPad = int64_t(1) << 30;

// The registered op's C++ signature (schema in upfirdn2d.cpp), as csrc/autograd/op_handles.h
// calls it.
using UpFirDn2dFn = at::Tensor(const at::Tensor& x, const std::optional<at::Tensor>& f, at::IntArrayRef up,
                               at::IntArrayRef down, c10::SymIntArrayRef padding, bool flip_filter, double gain);

// Everything a kernel needs, validated. Axis order in the names: x = width, y = height.
struct UpFirDn2dPlan {
  at::Tensor x;  // contiguous, or channels_last when channels_last is set (a copy if needed)
  at::Tensor f;  // float32, contiguous, on x's device: 1-D (separable) or 2-D; undefined = identity
  bool channels_last = false;
  bool separable = true;  // f is 1-D (or absent): the same taps along both axes
  bool flip_filter = false;
  double gain = 1;
  int64_t N = 0, C = 0, H = 0, W = 0, Ho = 0, Wo = 0;
  int64_t upx = 1, upy = 1, downx = 1, downy = 1;
  int64_t padx0 = 0, padx1 = 0, pady0 = 0, pady1 = 0;
  int64_t fw = 1, fh = 1;  // taps along x and y
};

UpFirDn2dPlan plan_upfirdn2d(const at::Tensor& x, const std::optional<at::Tensor>& f,
                             at::IntArrayRef up, at::IntArrayRef down, at::IntArrayRef padding,
                             bool flip_filter, double gain);

// The output tensor: [N, C, Ho, Wo] in the plan's layout.
at::Tensor upfirdn2d_empty_output(const UpFirDn2dPlan& p);

}  // namespace alae_fast
