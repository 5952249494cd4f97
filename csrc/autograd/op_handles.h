// The registered ops as the C++ autograd calls them: through the dispatcher (below autograd in
// a forward; with autograd in a backward, so that a double backward records its graph), each
// schema looked up once per process.
#pragma once

#include <ATen/core/Tensor.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <c10/core/SymIntArrayRef.h>

#include <optional>
#include <tuple>

namespace alae_fast {
namespace ops {

using OptTensor = std::optional<at::Tensor>;
using Tensor3 = std::tuple<at::Tensor, at::Tensor, at::Tensor>;

template <typename Sig>
c10::TypedOperatorHandle<Sig> find_op(const char* name) {
  return c10::Dispatcher::singleton().findSchemaOrThrow(name, "").typed<Sig>();
}

inline at::Tensor bias_act(const at::Tensor& x, const OptTensor& b, int64_t dim, c10::string_view act,
                           double alpha, double gain, std::optional<double> clamp) {
  static const auto op = find_op<at::Tensor(const at::Tensor&, const OptTensor&, int64_t, c10::string_view,
                                            double, double, std::optional<double>)>("alae_fast::bias_act");
  return op.call(x, b, dim, act, alpha, gain, clamp);
}

inline std::tuple<at::Tensor, at::Tensor> bias_act_grad(const at::Tensor& g, const at::Tensor& x, const OptTensor& b,
                                                        int64_t dim, c10::string_view act, double alpha, double gain,
                                                        std::optional<double> clamp, int64_t order) {
  static const auto op =
      find_op<std::tuple<at::Tensor, at::Tensor>(const at::Tensor&, const at::Tensor&, const OptTensor&, int64_t,
                                                 c10::string_view, double, double, std::optional<double>, int64_t)>(
          "alae_fast::bias_act_grad");
  return op.call(g, x, b, dim, act, alpha, gain, clamp, order);
}

inline at::Tensor upfirdn2d(const at::Tensor& x, const OptTensor& f, at::IntArrayRef up, at::IntArrayRef down,
                            c10::SymIntArrayRef padding, bool flip_filter, double gain) {
  static const auto op = find_op<at::Tensor(const at::Tensor&, const OptTensor&, at::IntArrayRef, at::IntArrayRef,
                                            c10::SymIntArrayRef, bool, double)>("alae_fast::upfirdn2d");
  return op.call(x, f, up, down, padding, flip_filter, gain);
}

inline Tensor3 adain(const at::Tensor& x, const OptTensor& noise, const OptTensor& noise_weight, const OptTensor& bias,
                     const OptTensor& style_scale, const OptTensor& style_bias, c10::string_view act, double alpha,
                     double eps) {
  static const auto op =
      find_op<Tensor3(const at::Tensor&, const OptTensor&, const OptTensor&, const OptTensor&, const OptTensor&,
                      const OptTensor&, c10::string_view, double, double)>("alae_fast::adain");
  return op.call(x, noise, noise_weight, bias, style_scale, style_bias, act, alpha, eps);
}

inline std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor> adain_grad(
    const OptTensor& gy, const OptTensor& gmean, const OptTensor& gstd, const at::Tensor& x, const OptTensor& noise,
    const OptTensor& noise_weight, const OptTensor& bias, const OptTensor& style_scale, const at::Tensor& mean,
    const at::Tensor& std, c10::string_view act, double alpha) {
  using Out = std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor>;
  static const auto op =
      find_op<Out(const OptTensor&, const OptTensor&, const OptTensor&, const at::Tensor&, const OptTensor&,
                  const OptTensor&, const OptTensor&, const OptTensor&, const at::Tensor&, const at::Tensor&,
                  c10::string_view, double)>("alae_fast::adain_grad");
  return op.call(gy, gmean, gstd, x, noise, noise_weight, bias, style_scale, mean, std, act, alpha);
}

inline Tensor3 instance_norm_stats(const at::Tensor& x, double eps) {
  static const auto op = find_op<Tensor3(const at::Tensor&, double)>("alae_fast::instance_norm_stats");
  return op.call(x, eps);
}

inline at::Tensor instance_norm_stats_grad(const OptTensor& gy, const OptTensor& gmean, const OptTensor& gstd,
                                           const at::Tensor& x, const at::Tensor& mean, const at::Tensor& std) {
  static const auto op =
      find_op<at::Tensor(const OptTensor&, const OptTensor&, const OptTensor&, const at::Tensor&, const at::Tensor&,
                         const at::Tensor&)>("alae_fast::instance_norm_stats_grad");
  return op.call(gy, gmean, gstd, x, mean, std);
}

inline std::tuple<at::Tensor, at::Tensor> modulate_weight(const at::Tensor& weight, const at::Tensor& styles,
                                                          double eps) {
  static const auto op =
      find_op<std::tuple<at::Tensor, at::Tensor>(const at::Tensor&, const at::Tensor&, double)>(
          "alae_fast::modulate_weight");
  return op.call(weight, styles, eps);
}

inline std::tuple<at::Tensor, at::Tensor> modulate_weight_grad(const OptTensor& gw, const OptTensor& gd,
                                                               const at::Tensor& weight, const at::Tensor& styles,
                                                               const at::Tensor& d) {
  static const auto op =
      find_op<std::tuple<at::Tensor, at::Tensor>(const OptTensor&, const OptTensor&, const at::Tensor&,
                                                 const at::Tensor&, const at::Tensor&)>(
          "alae_fast::modulate_weight_grad");
  return op.call(gw, gd, weight, styles, d);
}

// An optional tensor from a saved variable (undefined = absent) or a gradient (undefined = zero).
inline OptTensor opt(const at::Tensor& t) { return t.defined() ? OptTensor(t) : std::nullopt; }

}  // namespace ops
}  // namespace alae_fast
