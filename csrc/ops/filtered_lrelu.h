// filtered_lrelu: argument checks and the plan shared by the CPU and CUDA kernels.
#pragma once

#include <ATen/core/Tensor.h>

#include <optional>
#include <tuple>

#include "../common/filtered_lrelu.h"

namespace alae_fast {

// One call, validated. Filters are float32 contiguous (undefined = identity [1]); x keeps
// its strides (the kernels read and write any 4-D strides plane by plane).
struct FilteredLreluPlan {
  at::Tensor fu, fd;
  int64_t N = 0, C = 0;
  int64_t up = 1, down = 1;
  int64_t px0 = 0, px1 = 0, py0 = 0, py1 = 0;
  int64_t fu_w = 1, fu_h = 1, fd_w = 1, fd_h = 1;
  bool fu_separable = true, fd_separable = true, flip_filter = false;
  double gain = 1, slope = 0.2, clamp = 0;
  bool has_clamp = false;
  FlreluGeometry geo{};
};

// Checks of the configuration shared by the three ops; `in_h`/`in_w` are x's plane size, `dtype`
// x's (the plan's taps take its accumulation type: float64 for float64, else float32).
FilteredLreluPlan plan_filtered_lrelu(const char* op, int64_t N, int64_t C, int64_t in_h, int64_t in_w,
                                      const at::Device& device, at::ScalarType dtype,
                                      const std::optional<at::Tensor>& fu,
                                      const std::optional<at::Tensor>& fd, int64_t up, int64_t down,
                                      at::IntArrayRef padding, double gain, double slope,
                                      std::optional<double> clamp, bool flip_filter);

// Checks of x (4-D, float dtype) and b ([C], x's dtype and device).
void check_filtered_lrelu_input(const char* op, const at::Tensor& x, const std::optional<at::Tensor>& b);

// Checks of a saved state against a plan: uint8 [N, C, state_bytes] on the device.
void check_filtered_lrelu_state(const char* op, const at::Tensor& state, const FilteredLreluPlan& p,
                                const at::Device& device);

// The three ops' checks and plans, shared by the CPU and CUDA kernels (the arguments are the
// ops' own, csrc/ops/filtered_lrelu.cpp's schemas).
FilteredLreluPlan plan_filtered_lrelu_forward(const at::Tensor& x, const std::optional<at::Tensor>& fu,
                                              const std::optional<at::Tensor>& fd,
                                              const std::optional<at::Tensor>& b, int64_t up, int64_t down,
                                              at::IntArrayRef padding, double gain, double slope,
                                              std::optional<double> clamp, bool flip_filter);
FilteredLreluPlan plan_filtered_lrelu_masked(const at::Tensor& v, const at::Tensor& state,
                                             const std::optional<at::Tensor>& fu,
                                             const std::optional<at::Tensor>& fd, int64_t up, int64_t down,
                                             at::IntArrayRef padding, double gain, double slope, bool flip_filter);
FilteredLreluPlan plan_filtered_lrelu_grad(const at::Tensor& dy, const at::Tensor& state,
                                           const std::optional<at::Tensor>& fu, const std::optional<at::Tensor>& fd,
                                           at::IntArrayRef in_size, int64_t up, int64_t down,
                                           at::IntArrayRef padding, double gain, double slope, bool flip_filter);

// The three ops' signatures (csrc/ops/filtered_lrelu.cpp's schemas), as the C++ autograd calls them.
using FilteredLreluFn = std::tuple<at::Tensor, at::Tensor>(
    const at::Tensor& x, const std::optional<at::Tensor>& fu, const std::optional<at::Tensor>& fd,
    const std::optional<at::Tensor>& b, int64_t up, int64_t down, at::IntArrayRef padding, double gain, double slope,
    std::optional<double> clamp, bool flip_filter);
using FilteredLreluGradFn = std::tuple<at::Tensor, at::Tensor>(
    const at::Tensor& dy, const at::Tensor& state, const std::optional<at::Tensor>& fu,
    const std::optional<at::Tensor>& fd, at::IntArrayRef in_size, int64_t up, int64_t down, at::IntArrayRef padding,
    double gain, double slope, bool flip_filter, bool bias_grad);
using FilteredLreluMaskedFn = at::Tensor(const at::Tensor& v, const at::Tensor& state,
                                         const std::optional<at::Tensor>& fu, const std::optional<at::Tensor>& fd,
                                         int64_t up, int64_t down, at::IntArrayRef padding, double gain, double slope,
                                         bool flip_filter);

// An empty [N, C, h, w] tensor with like's dtype and device, channels_last when like is.
at::Tensor filtered_lrelu_empty(const at::Tensor& like, int64_t h, int64_t w);

}  // namespace alae_fast
