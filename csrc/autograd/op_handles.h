// The registered ops as the C++ autograd calls them: through the dispatcher (below autograd in
// a forward; with autograd in a backward, so that a double backward records its graph), each
// schema looked up once per process. The signatures are the op headers' (csrc/ops/<op>.h).
#pragma once

#include <ATen/core/Tensor.h>
#include <ATen/core/dispatch/Dispatcher.h>

#include <mutex>
#include <optional>
#include <tuple>

#include "../ops/adain.h"
#include "../ops/bias_act.h"
#include "../ops/filtered_lrelu.h"
#include "../ops/instance_norm_stats.h"
#include "../ops/modulate_weight.h"
#include "../ops/upfirdn2d.h"

namespace alae_fast {
namespace ops {

using OptTensor = std::optional<at::Tensor>;
using Tensor3 = std::tuple<at::Tensor, at::Tensor, at::Tensor>;

// A registered op of signature Fn, called like a function; its schema is looked up on the first
// call (the op may be registered after this object is constructed).
template <typename Fn>
class Op;

template <typename R, typename... Args>
class Op<R(Args...)> {
 public:
  explicit Op(const char* name) : name_(name) {}

  R operator()(Args... args) const {
    std::call_once(found_, [this] {
      handle_.emplace(c10::Dispatcher::singleton().findSchemaOrThrow(name_, "").typed<R(Args...)>());
    });
    return handle_->call(args...);
  }

 private:
  const char* name_;
  mutable std::once_flag found_;
  mutable std::optional<c10::TypedOperatorHandle<R(Args...)>> handle_;
};

inline const Op<BiasActFn> bias_act("alae_fast::bias_act");
inline const Op<BiasActGradFn> bias_act_grad("alae_fast::bias_act_grad");
inline const Op<UpFirDn2dFn> upfirdn2d("alae_fast::upfirdn2d");
inline const Op<AdainFn> adain("alae_fast::adain");
inline const Op<AdainGradFn> adain_grad("alae_fast::adain_grad");
inline const Op<InstanceNormStatsFn> instance_norm_stats("alae_fast::instance_norm_stats");
inline const Op<InstanceNormStatsGradFn> instance_norm_stats_grad("alae_fast::instance_norm_stats_grad");
inline const Op<ModulateWeightFn> modulate_weight("alae_fast::modulate_weight");
inline const Op<FilteredLreluFn> filtered_lrelu("alae_fast::filtered_lrelu");
inline const Op<FilteredLreluGradFn> filtered_lrelu_grad("alae_fast::filtered_lrelu_grad");
inline const Op<FilteredLreluMaskedFn> filtered_lrelu_masked("alae_fast::filtered_lrelu_masked");
inline const Op<ModulateWeightGradFn> modulate_weight_grad("alae_fast::modulate_weight_grad");

// An optional tensor from a saved variable (undefined = absent) or a gradient (undefined = zero).
inline OptTensor opt(const at::Tensor& t) { return t.defined() ? OptTensor(t) : std::nullopt; }

// The inverse, for save_for_backward: an absent optional tensor as an undefined one.
inline at::Tensor or_undefined(const OptTensor& t) { return t.has_value() ? *t : at::Tensor(); }

}  // namespace ops
}  // namespace alae_fast
