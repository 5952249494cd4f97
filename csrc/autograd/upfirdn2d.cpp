// Autograd of upfirdn2d, in C++ for the per-call cost (see csrc/autograd/bias_act.cpp). The
// adjoint along one axis is again an upfirdn2d: dx[i] gathers dy[o] * w[t] over
// i*up = o*down + t - p0, i.e. up and down swapped, the taps reversed (flip_filter toggled),
// pad0 = taps - 1 - p0 and pad1 whatever makes the output exactly as long as the input. That
// op's autograd is this one again, so every order of x-derivative is available. No gradient
// flows to the filter.
#include <torch/autograd.h>
#include <torch/library.h>

#include <vector>

#include "needs_grad.h"
#include "op_handles.h"

namespace alae_fast {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// (taps along x, taps along y): a 1-D filter is separable, the same taps on both axes.
std::pair<int64_t, int64_t> filter_size(const at::Tensor& f) {
  if (!f.defined()) return {1, 1};
  return {f.size(-1), f.size(0)};
}

class UpFirDn2dFunction : public torch::autograd::Function<UpFirDn2dFunction> {
 public:
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, const ops::OptTensor& f,
                            at::IntArrayRef up, at::IntArrayRef down, c10::SymIntArrayRef padding,
                            bool flip_filter, double gain) {
    at::AutoDispatchBelowADInplaceOrView guard;
    at::Tensor y = ops::upfirdn2d(x, f, up, down, padding, flip_filter, gain);
    ctx->save_for_backward({f.has_value() ? *f : at::Tensor()});
    ctx->saved_data["up"] = up.vec();
    ctx->saved_data["down"] = down.vec();
    for (int i = 0; i < 4; ++i) ctx->saved_data["p" + std::to_string(i)] = padding[i];
    ctx->saved_data["flip"] = flip_filter;
    ctx->saved_data["gain"] = gain;
    ctx->saved_data["ih"] = x.sym_size(2);
    ctx->saved_data["iw"] = x.sym_size(3);
    return y;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    SkipAutogradUnlessRecording skip;
    variable_list out(7);
    const at::Tensor& dy = grads[0];
    if (!dy.defined() || !ctx->needs_input_grad(0)) return out;
    const at::Tensor f = ctx->get_saved_variables()[0];
    const auto up = ctx->saved_data["up"].toIntVector(), down = ctx->saved_data["down"].toIntVector();
    const int64_t ux = up[0], uy = up[1], dx = down[0], dyf = down[1];
    auto p = [&](int i) { return ctx->saved_data["p" + std::to_string(i)].toSymInt(); };
    const c10::SymInt ih = ctx->saved_data["ih"].toSymInt(), iw = ctx->saved_data["iw"].toSymInt();
    const auto [fw, fh] = filter_size(f);
    const c10::SymInt oh = dy.sym_size(2), ow = dy.sym_size(3);
    const std::vector<c10::SymInt> pad = {
        c10::SymInt(fw - 1) - p(0), iw * ux - ow * dx + p(0) - (ux - 1),
        c10::SymInt(fh - 1) - p(2), ih * uy - oh * dyf + p(2) - (uy - 1)};
    out[0] = ops::upfirdn2d(dy, ops::opt(f), {dx, dyf}, {ux, uy}, pad, !ctx->saved_data["flip"].toBool(),
                            ctx->saved_data["gain"].toDouble());
    return out;
  }
};

at::Tensor upfirdn2d_autograd(const at::Tensor& x, const ops::OptTensor& f, at::IntArrayRef up,
                              at::IntArrayRef down, c10::SymIntArrayRef padding, bool flip_filter, double gain) {
  return UpFirDn2dFunction::apply(x, f, up, down, padding, flip_filter, gain);
}

}  // namespace

TORCH_LIBRARY_IMPL(alae_fast, Autograd, m) {
  m.impl("upfirdn2d", &upfirdn2d_autograd);
}

}  // namespace alae_fast
