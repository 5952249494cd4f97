// adain and instance_norm_stats share one engine: instance_norm_stats is adain with a linear
// activation and no noise, bias or style. This header holds the argument checks, the memory
// layout the kernels see, and the engine entry points of each device.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/util/string_view.h>

#include <optional>
#include <string_view>
#include <tuple>

namespace alae_fast {

// x is [N, C, H, W], seen as N*C rows of L = H*W values: in NCHW-contiguous memory each
// row is contiguous; in channels_last memory ([N, H, W, C]) the rows interleave with
// stride C. Other strides are copied to NCHW-contiguous first.
struct AdainPlan {
  at::Tensor x;             // NCHW-contiguous or channels_last
  at::Tensor noise;         // [N, L] contiguous, or undefined
  at::Tensor noise_weight;  // [C] contiguous, or undefined (then noise is added with weight 1)
  at::Tensor bias;          // [C] contiguous, or undefined
  at::Tensor scale;         // [N, C] contiguous (style_scale; sigma = 1 + scale), or undefined
  at::Tensor shift;         // [N, C] contiguous (style_bias), or undefined
  int act = 0;
  double alpha = 0, eps = 0;
  int64_t N = 0, C = 0, L = 0;
  bool channels_last = false;
};

// Checks and prepares the arguments of adain / adain_grad (op names the op in messages).
AdainPlan plan_adain(std::string_view op, const at::Tensor& x, const std::optional<at::Tensor>& noise,
                     const std::optional<at::Tensor>& noise_weight,
                     const std::optional<at::Tensor>& bias, const std::optional<at::Tensor>& scale,
                     const std::optional<at::Tensor>& shift, std::string_view act, double alpha,
                     double eps);

// Checks a gradient input against the plan and returns it in x's layout (or undefined).
at::Tensor prepare_grad_y(std::string_view op, const std::optional<at::Tensor>& gy, const AdainPlan& p);
// Checks an [N, C] statistics tensor (mean, std or their cotangents): opmath dtype, contiguous.
at::Tensor prepare_row_stat(std::string_view op, const char* name,
                            const std::optional<at::Tensor>& t, const AdainPlan& p, bool required);

// What the engine's backward returns. dz = d(loss)/d(x + noise_weight*noise + bias) in x's
// dtype and layout; the rest are row sums over H*W, [N, C] in the computation dtype:
// sum(gy), sum(gy * xhat) (the style gradients), sum(dz) and sum(dz * noise) (the bias and
// noise_weight gradients before the sum over N; zero without noise).
struct AdainGrads {
  at::Tensor dz, sum_g, sum_gxhat, sum_dz, sum_dz_noise;
};

// The engine. Forward returns (y, mean, std) with y in x's dtype and layout, and mean and
// std of shape [N, C] in the computation dtype (float32 for half types, else x's).
// In the backward gy, gmean, gstd may be undefined (zero).
std::tuple<at::Tensor, at::Tensor, at::Tensor> adain_forward_cpu(const AdainPlan& p);
AdainGrads adain_backward_cpu(const AdainPlan& p, const at::Tensor& gy, const at::Tensor& gmean,
                              const at::Tensor& gstd, const at::Tensor& mean, const at::Tensor& std);
#ifdef ALAE_FAST_WITH_CUDA
std::tuple<at::Tensor, at::Tensor, at::Tensor> adain_forward_cuda(const AdainPlan& p);
AdainGrads adain_backward_cuda(const AdainPlan& p, const at::Tensor& gy, const at::Tensor& gmean,
                               const at::Tensor& gstd, const at::Tensor& mean, const at::Tensor& std);
#endif

// The registered ops' C++ signatures (schemas in adain.cpp), as csrc/autograd/op_handles.h
// calls them; adain_kernel and adain_grad_kernel below are of these types.
using AdainOutputs = std::tuple<at::Tensor, at::Tensor, at::Tensor>;  // y, mean, std
// dz, sum_g, sum_gxhat, sum_dz, sum_dz_noise: AdainGrads as the op returns it
using AdainGradOutputs = std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor>;
using AdainFn = AdainOutputs(const at::Tensor& x, const std::optional<at::Tensor>& noise,
                             const std::optional<at::Tensor>& noise_weight, const std::optional<at::Tensor>& bias,
                             const std::optional<at::Tensor>& style_scale,
                             const std::optional<at::Tensor>& style_bias, c10::string_view act, double alpha,
                             double eps);
using AdainGradFn = AdainGradOutputs(const std::optional<at::Tensor>& gy, const std::optional<at::Tensor>& gmean,
                                     const std::optional<at::Tensor>& gstd, const at::Tensor& x,
                                     const std::optional<at::Tensor>& noise,
                                     const std::optional<at::Tensor>& noise_weight,
                                     const std::optional<at::Tensor>& bias,
                                     const std::optional<at::Tensor>& style_scale, const at::Tensor& mean,
                                     const at::Tensor& std, c10::string_view act, double alpha);

// A device's engine entry points, as the templates below take them.
using AdainForwardEngine = std::tuple<at::Tensor, at::Tensor, at::Tensor>(const AdainPlan& p);
using AdainBackwardEngine = AdainGrads(const AdainPlan& p, const at::Tensor& gy, const at::Tensor& gmean,
                                       const at::Tensor& gstd, const at::Tensor& mean, const at::Tensor& std);

// The backward engine on checked and prepared gradient-op inputs (the checks of adain_grad
// and instance_norm_stats_grad; op names the op in messages).
template <AdainBackwardEngine* Backward>
AdainGrads run_adain_backward(std::string_view op, const AdainPlan& p, const std::optional<at::Tensor>& gy,
                              const std::optional<at::Tensor>& gmean, const std::optional<at::Tensor>& gstd,
                              const at::Tensor& mean, const at::Tensor& std) {
  at::Tensor g = prepare_grad_y(op, gy, p);
  at::Tensor gm = prepare_row_stat(op, "gmean", gmean, p, false);
  at::Tensor gs = prepare_row_stat(op, "gstd", gstd, p, false);
  at::Tensor mu = prepare_row_stat(op, "mean", mean, p, true);
  at::Tensor sd = prepare_row_stat(op, "std", std, p, true);
  return Backward(p, g, gm, gs, mu, sd);
}

// The kernels registered for one device (CPU: csrc/cpu/adain.cpp, CUDA: csrc/cuda/adain.cpp):
// the plan's checks, then that device's engine.
template <AdainForwardEngine* Forward>
AdainOutputs adain_kernel(const at::Tensor& x, const std::optional<at::Tensor>& noise,
                          const std::optional<at::Tensor>& noise_weight, const std::optional<at::Tensor>& bias,
                          const std::optional<at::Tensor>& style_scale, const std::optional<at::Tensor>& style_bias,
                          c10::string_view act, double alpha, double eps) {
  return Forward(plan_adain("adain", x, noise, noise_weight, bias, style_scale, style_bias,
                            std::string_view(act.data(), act.size()), alpha, eps));
}

template <AdainBackwardEngine* Backward>
AdainGradOutputs adain_grad_kernel(const std::optional<at::Tensor>& gy, const std::optional<at::Tensor>& gmean,
                                   const std::optional<at::Tensor>& gstd, const at::Tensor& x,
                                   const std::optional<at::Tensor>& noise,
                                   const std::optional<at::Tensor>& noise_weight,
                                   const std::optional<at::Tensor>& bias,
                                   const std::optional<at::Tensor>& style_scale, const at::Tensor& mean,
                                   const at::Tensor& std, c10::string_view act, double alpha) {
  constexpr std::string_view op = "adain_grad";
  const AdainPlan p = plan_adain(op, x, noise, noise_weight, bias, style_scale, std::nullopt,
                                 std::string_view(act.data(), act.size()), alpha, 0.0);
  AdainGrads o = run_adain_backward<Backward>(op, p, gy, gmean, gstd, mean, std);
  return {o.dz, o.sum_g, o.sum_gxhat, o.sum_dz, o.sum_dz_noise};
}

}  // namespace alae_fast
