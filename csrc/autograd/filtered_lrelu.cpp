// Autograd of filtered_lrelu and of its two gradient ops, in C++ for the per-call cost (see
// csrc/autograd/bias_act.cpp): registered from Python (torch.library.register_autograd) it cost
// ~30 us of Python a call even without gradients, more than the kernel on small planes.
//
// With G = filtered_lrelu_grad at a saved state (dx = U^T(m * D^T(dy)), db = dx summed over
// N, H, W) and M = filtered_lrelu_masked (D(m * U(v))): G is linear in dy and M is its adjoint,
// and G is M's. So filtered_lrelu's backward is G, G's backward is M (the cotangent of db joins
// that of dx, broadcast over N, H, W), and M's is G: every order of x- and b-derivative. The
// state (2-bit branch codes) is not differentiable. The kernels give the filters no gradient:
// a filter that requires one is refused while gradients are recorded, never left without one.
#include <ATen/ATen.h>
#include <torch/autograd.h>
#include <torch/library.h>

#include <vector>

#include "needs_grad.h"
#include "op_handles.h"

namespace alae_fast {
namespace {

// The configuration the three ops share, kept in an autograd context. The plane size stays
// symbolic under torch.compile's dynamic shapes (a forward must not specialise it); it becomes
// ints only where a backward passes it to a gradient op (their schemas take int[2] in_size).
struct FlreluConfig {
  c10::SymInt in_h, in_w;
  std::vector<int64_t> padding;
  int64_t up, down;
  double gain, slope;
  bool flip_filter;

  void save(AutogradContext* ctx) const {
    ctx->saved_data["in_h"] = in_h;
    ctx->saved_data["in_w"] = in_w;
    ctx->saved_data["padding"] = padding;
    ctx->saved_data["up"] = up;
    ctx->saved_data["down"] = down;
    ctx->saved_data["gain"] = gain;
    ctx->saved_data["slope"] = slope;
    ctx->saved_data["flip_filter"] = flip_filter;
  }
  static FlreluConfig load(AutogradContext* ctx) {
    return {ctx->saved_data["in_h"].toSymInt(),   ctx->saved_data["in_w"].toSymInt(),
            ctx->saved_data["padding"].toIntVector(), ctx->saved_data["up"].toInt(),
            ctx->saved_data["down"].toInt(),       ctx->saved_data["gain"].toDouble(),
            ctx->saved_data["slope"].toDouble(),   ctx->saved_data["flip_filter"].toBool()};
  }
  std::vector<int64_t> in_size() const {
    return {in_h.guard_int(__FILE__, __LINE__), in_w.guard_int(__FILE__, __LINE__)};
  }
};

// What every backward here reads: the state, the filters (undefined when absent) and the
// configuration.
void save_common(AutogradContext* ctx, const at::Tensor& state, const ops::OptTensor& fu, const ops::OptTensor& fd,
                 const FlreluConfig& c) {
  ctx->save_for_backward({state, ops::or_undefined(fu), ops::or_undefined(fd)});
  c.save(ctx);
  ctx->saved_data["has_fu"] = fu.has_value();
  ctx->saved_data["has_fd"] = fd.has_value();
}

bool saved_flag(AutogradContext* ctx, const char* name) { return ctx->saved_data[name].toBool(); }

// Saved by save_common: state, fu, fd (undefined when absent); returns them as (state, fu, fd).
std::tuple<at::Tensor, ops::OptTensor, ops::OptTensor> load_tensors(AutogradContext* ctx) {
  const auto s = ctx->get_saved_variables();
  return {s[0], ops::opt(s[1]), ops::opt(s[2])};
}

at::Tensor apply_grad(const FlreluConfig& c, const at::Tensor& dy, const at::Tensor& state, const ops::OptTensor& fu,
                      const ops::OptTensor& fd, bool bias_grad, at::Tensor* db) {
  auto [dx, sums] = ops::filtered_lrelu_grad(dy, state, fu, fd, c.in_size(), c.up, c.down, c.padding, c.gain,
                                             c.slope, c.flip_filter, bias_grad);
  if (db) *db = sums;
  return dx;
}

at::Tensor apply_masked(const FlreluConfig& c, const at::Tensor& v, const at::Tensor& state,
                        const ops::OptTensor& fu, const ops::OptTensor& fd) {
  return ops::filtered_lrelu_masked(v, state, fu, fd, c.up, c.down, c.padding, c.gain, c.slope, c.flip_filter);
}

void refuse_filter_grad(const char* op, const ops::OptTensor& fu, const ops::OptTensor& fd) {
  if (!at::GradMode::is_enabled()) return;
  for (const auto& [name, f] : {std::pair<const char*, const ops::OptTensor*>{"fu", &fu}, {"fd", &fd}}) {
    TORCH_CHECK_VALUE(!(f->has_value() && (*f)->requires_grad()), op, ": ", name,
                      " requires a gradient, which the kernel does not compute; pass ", name,
                      ".detach() or use impl='ref'");
  }
}

class FilteredLreluFunction : public torch::autograd::Function<FilteredLreluFunction> {
 public:
  static variable_list forward(AutogradContext* ctx, const at::Tensor& x, const ops::OptTensor& fu,
                               const ops::OptTensor& fd, const ops::OptTensor& b, int64_t up, int64_t down,
                               at::IntArrayRef padding, double gain, double slope, std::optional<double> clamp,
                               bool flip_filter) {
    at::AutoDispatchBelowADInplaceOrView guard;
    auto [y, state] = ops::filtered_lrelu(x, fu, fd, b, up, down, padding, gain, slope, clamp, flip_filter);
    ctx->mark_non_differentiable({state});
    save_common(ctx, state, fu, fd, {x.sym_size(2), x.sym_size(3), padding.vec(), up, down, gain, slope, flip_filter});
    ctx->saved_data["has_b"] = b.has_value();
    return {y, state};
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    SkipAutogradUnlessRecording skip;
    variable_list out = input_grads<FilteredLreluFn>();  // x, fu, fd, b, then the configuration
    const std::initializer_list<bool> given = {true, saved_flag(ctx, "has_fu"), saved_flag(ctx, "has_fd"),
                                               saved_flag(ctx, "has_b")};
    const bool need_x = needs_grad(ctx, given, 0), need_b = needs_grad(ctx, given, 3);
    if (!grads[0].defined() || !(need_x || need_b)) return out;
    auto [state, fu, fd] = load_tensors(ctx);
    at::Tensor db;
    at::Tensor dx = apply_grad(FlreluConfig::load(ctx), grads[0], state, fu, fd, need_b, &db);
    if (need_x) out[0] = dx;
    if (need_b) out[3] = db;
    return out;
  }
};

class FilteredLreluGradFunction : public torch::autograd::Function<FilteredLreluGradFunction> {
 public:
  static variable_list forward(AutogradContext* ctx, const at::Tensor& dy, const at::Tensor& state,
                               const ops::OptTensor& fu, const ops::OptTensor& fd, at::IntArrayRef in_size,
                               int64_t up, int64_t down, at::IntArrayRef padding, double gain, double slope,
                               bool flip_filter, bool bias_grad) {
    at::AutoDispatchBelowADInplaceOrView guard;
    auto [dx, db] = ops::filtered_lrelu_grad(dy, state, fu, fd, in_size, up, down, padding, gain, slope,
                                             flip_filter, bias_grad);
    save_common(ctx, state, fu, fd, {in_size[0], in_size[1], padding.vec(), up, down, gain, slope, flip_filter});
    return {dx, db};
  }

  // (dx, db) = (G(dy), sum of G(dy)): db's cotangent joins dx's broadcast over N, H, W, and
  // both go through G's adjoint M.
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    SkipAutogradUnlessRecording skip;
    variable_list out = input_grads<FilteredLreluGradFn>();  // dy, state, fu, fd, then the configuration
    const std::initializer_list<bool> given = {true, true, saved_flag(ctx, "has_fu"), saved_flag(ctx, "has_fd")};
    if (!needs_grad(ctx, given, 0)) return out;
    auto [state, fu, fd] = load_tensors(ctx);
    const FlreluConfig c = FlreluConfig::load(ctx);
    at::Tensor v = grads[0];
    const at::Tensor& ddb = grads[1];
    if (ddb.defined() && ddb.sym_numel() > 0) {
      const at::Tensor row = ddb.reshape({1, -1, 1, 1});
      v = v.defined() ? v + row
                      : row.expand_symint({state.sym_size(0), -1, c.in_h, c.in_w});
    }
    if (v.defined()) out[0] = apply_masked(c, v, state, fu, fd);
    return out;
  }
};

class FilteredLreluMaskedFunction : public torch::autograd::Function<FilteredLreluMaskedFunction> {
 public:
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& v, const at::Tensor& state,
                            const ops::OptTensor& fu, const ops::OptTensor& fd, int64_t up, int64_t down,
                            at::IntArrayRef padding, double gain, double slope, bool flip_filter) {
    at::AutoDispatchBelowADInplaceOrView guard;
    at::Tensor out = ops::filtered_lrelu_masked(v, state, fu, fd, up, down, padding, gain, slope, flip_filter);
    save_common(ctx, state, fu, fd, {v.sym_size(2), v.sym_size(3), padding.vec(), up, down, gain, slope, flip_filter});
    return out;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    SkipAutogradUnlessRecording skip;
    variable_list out = input_grads<FilteredLreluMaskedFn>();  // v, state, fu, fd, then the configuration
    const std::initializer_list<bool> given = {true, true, saved_flag(ctx, "has_fu"), saved_flag(ctx, "has_fd")};
    if (!grads[0].defined() || !needs_grad(ctx, given, 0)) return out;
    auto [state, fu, fd] = load_tensors(ctx);
    out[0] = apply_grad(FlreluConfig::load(ctx), grads[0], state, fu, fd, false, nullptr);
    return out;
  }
};

std::tuple<at::Tensor, at::Tensor> filtered_lrelu_autograd(const at::Tensor& x, const ops::OptTensor& fu,
                                                           const ops::OptTensor& fd, const ops::OptTensor& b,
                                                           int64_t up, int64_t down, at::IntArrayRef padding,
                                                           double gain, double slope, std::optional<double> clamp,
                                                           bool flip_filter) {
  refuse_filter_grad("filtered_lrelu", fu, fd);
  const auto out = FilteredLreluFunction::apply(x, fu, fd, b, up, down, padding, gain, slope, clamp, flip_filter);
  return {out[0], out[1]};
}

std::tuple<at::Tensor, at::Tensor> filtered_lrelu_grad_autograd(const at::Tensor& dy, const at::Tensor& state,
                                                                const ops::OptTensor& fu, const ops::OptTensor& fd,
                                                                at::IntArrayRef in_size, int64_t up, int64_t down,
                                                                at::IntArrayRef padding, double gain, double slope,
                                                                bool flip_filter, bool bias_grad) {
  refuse_filter_grad("filtered_lrelu_grad", fu, fd);
  const auto out = FilteredLreluGradFunction::apply(dy, state, fu, fd, in_size, up, down, padding, gain, slope,
                                                    flip_filter, bias_grad);
  return {out[0], out[1]};
}

at::Tensor filtered_lrelu_masked_autograd(const at::Tensor& v, const at::Tensor& state, const ops::OptTensor& fu,
                                          const ops::OptTensor& fd, int64_t up, int64_t down, at::IntArrayRef padding,
                                          double gain, double slope, bool flip_filter) {
  refuse_filter_grad("filtered_lrelu_masked", fu, fd);
  return FilteredLreluMaskedFunction::apply(v, state, fu, fd, up, down, padding, gain, slope, flip_filter);
}

}  // namespace

TORCH_LIBRARY_IMPL(alae_fast, Autograd, m) {
  m.impl("filtered_lrelu", &filtered_lrelu_autograd);
  m.impl("filtered_lrelu_grad", &filtered_lrelu_grad_autograd);
  m.impl("filtered_lrelu_masked", &filtered_lrelu_masked_autograd);
}

}  // namespace alae_fast
