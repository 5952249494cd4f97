// Autograd of upfirdn2d, in C++ for the per-call cost (see csrc/autograd/bias_act.cpp).
//
// Gradient of x. The adjoint along one axis is again an upfirdn2d: dx[i] gathers dy[o] * w[t]
// over i*up = o*down + t - p0, i.e. up and down swapped, the taps reversed (flip_filter
// toggled), pad0 = taps - 1 - p0 and pad1 whatever makes the output exactly as long as the
// input. That op's autograd is this one again, so every order of x-derivative is available.
//
// Gradient of f. Let z = pad(zero_insert(x, up), padding) (upfirdn2d with no filter, no down)
// and k the taps as the kernels apply them by correlation (k = f for flip_filter, else f
// reversed along both axes). The forward is
//     y[n, c, oy, ox] = gain * sum_{ty, tx} k[ty, tx] * z[n, c, oy*dy + ty, ox*dx + tx],
// linear in k, so
//     G[ty, tx] := dL/dk[ty, tx] / gain = sum_{n, c, oy, ox} dy[n, c, oy, ox] * z[n, c, oy*dy + ty, ox*dx + tx],
// a correlation of z with dy dilated by down: conv2d of z as ONE image of N*C channels with
// dy as ONE [1, N*C, Ho, Wo] weight, dilation (dy, dx), cut to the taps_y x taps_x corner
// (its output is at least that big because Ho = (Hz - taps_y + dy) // dy).
// A 2-D f gets gain * G (reversed back unless flip_filter). A 1-D f is separable,
// k2[ty, tx] = k[ty] * k[tx], and k appears on both axes, so by the product rule
//     dL/dk[t] = gain * (sum_tx G[t, tx] k[tx] + sum_ty G[ty, t] k[ty]) = gain * (G k + G^T k)[t].
// Both are written in differentiable ops (upfirdn2d, conv2d, matmul), so the filter gradient
// has gradients too. The ops run in float32 for half x (float64 for float64 x), and the result
// takes f's dtype.
#include <ATen/ATen.h>
#include <torch/autograd.h>
#include <torch/library.h>

#include <vector>

#include "needs_grad.h"
#include "op_handles.h"

namespace alae_fast {
namespace {

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
    // x is kept only for the filter gradient.
    const bool f_grad = f.has_value() && f->defined() && f->requires_grad();
    ctx->save_for_backward({ops::or_undefined(f), f_grad ? x : at::Tensor()});
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
    variable_list out = input_grads<UpFirDn2dFn>();
    const at::Tensor& dy = grads[0];
    if (!dy.defined()) return out;
    const auto saved = ctx->get_saved_variables();
    const at::Tensor& f = saved[0];
    const auto up = ctx->saved_data["up"].toIntVector(), down = ctx->saved_data["down"].toIntVector();
    const int64_t ux = up[0], uy = up[1], dx = down[0], dyf = down[1];
    auto p = [&](int i) { return ctx->saved_data["p" + std::to_string(i)].toSymInt(); };
    const bool flip = ctx->saved_data["flip"].toBool();
    const double gain = ctx->saved_data["gain"].toDouble();
    const auto [fw, fh] = filter_size(f);
    if (ctx->needs_input_grad(0)) {
      const c10::SymInt ih = ctx->saved_data["ih"].toSymInt(), iw = ctx->saved_data["iw"].toSymInt();
      const c10::SymInt oh = dy.sym_size(2), ow = dy.sym_size(3);
      if (ih == 0 || iw == 0) {
        // An empty plane padded into a non-empty output: the adjoint would have to make an
        // empty plane, which upfirdn2d refuses ("padding leaves no output"). Its gradient is
        // the empty tensor of x's shape. (torch.compile specialises sizes 0 anyway.)
        out[0] = at::zeros_symint({dy.sym_size(0), dy.sym_size(1), ih, iw}, dy.options());
      } else {
        const std::vector<c10::SymInt> pad = {
            c10::SymInt(fw - 1) - p(0), iw * ux - ow * dx + p(0) - (ux - 1),
            c10::SymInt(fh - 1) - p(2), ih * uy - oh * dyf + p(2) - (uy - 1)};
        out[0] = ops::upfirdn2d(dy, ops::opt(f), {dx, dyf}, {ux, uy}, pad, !flip, gain);
      }
    }
    if (f.defined() && needs_grad(ctx, {true, true}, 1)) {
      const at::Tensor& x = saved[1];
      const std::vector<c10::SymInt> pad = {p(0), p(1), p(2), p(3)};
      const auto acc = [](const at::Tensor& t) {
        return at::isReducedFloatingType(t.scalar_type()) ? t.to(at::kFloat) : t;
      };
      const at::Tensor z = acc(ops::upfirdn2d(x, std::nullopt, {ux, uy}, {1, 1}, pad, false, 1.0));
      const at::Tensor g = acc(dy).to(z.scalar_type());
      at::Tensor G;
      if (x.sym_size(0) * x.sym_size(1) == 0) {
        // No images: nothing depends on the taps. (conv2d cannot take the zero-channel weight.)
        G = (z.sum() * 0 + g.sum() * 0).expand({fh, fw});
      } else {
        const std::vector<int64_t> stride = {1, 1}, no_pad = {0, 0}, dilation = {dyf, dx};
        G = at::conv2d(z.flatten(0, 1).unsqueeze(0), g.flatten(0, 1).unsqueeze(0), std::nullopt, stride, no_pad,
                       dilation, 1)
                .select(0, 0)
                .select(0, 0)
                .slice(0, 0, fh)
                .slice(1, 0, fw);
      }
      at::Tensor dk;
      if (f.dim() == 2) {
        dk = G * gain;
      } else {
        const at::Tensor k = (flip ? f : f.flip({0})).to(G.scalar_type());
        dk = (at::mv(G, k) + at::mv(G.t(), k)) * gain;
      }
      out[1] = (flip ? dk : dk.flip(f.dim() == 2 ? std::vector<int64_t>{0, 1} : std::vector<int64_t>{0}))
                   .to(f.scalar_type());
    }
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
