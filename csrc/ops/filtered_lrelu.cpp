// Schema and argument checks of filtered_lrelu and its two gradient ops.
#include "filtered_lrelu.h"
#include "upfirdn2d.h"

#include <ATen/ATen.h>
#include <torch/library.h>

#include <cmath>

namespace alae_fast {
namespace {

void check_filter(const char* op, const char* name, const std::optional<at::Tensor>& f,
                  const at::Device& device, at::ScalarType dtype, at::Tensor& out, int64_t& w, int64_t& h, bool& separable) {
  if (!f.has_value() || !f->defined()) return;
  const at::Tensor& t = *f;
  TORCH_CHECK_VALUE(at::isFloatingType(t.scalar_type()), op, ": ", name,
                    " must be a floating-point tensor; got ", t.scalar_type());
  TORCH_CHECK_VALUE(t.dim() == 1 || t.dim() == 2, op, ": ", name, " must be 1-D (separable) or 2-D; got ",
                    t.dim(), "-D of shape ", t.sizes());
  TORCH_CHECK_VALUE(t.numel() > 0, op, ": ", name, " must not be empty; got shape ", t.sizes());
  TORCH_CHECK_VALUE(t.device() == device, op, ": ", name, " must be on x's device ", device, "; got ",
                    t.device());
  // Taps in the data's accumulation type: a float64 call is float64 throughout.
  out = t.to(dtype == at::kDouble ? at::kDouble : at::kFloat).contiguous();
  separable = t.dim() == 1;
  w = t.size(-1);
  h = t.size(0);
}

}  // namespace

void check_filtered_lrelu_input(const char* op, const at::Tensor& x, const std::optional<at::Tensor>& b) {
  TORCH_CHECK_VALUE(x.dim() == 4, op, ": x must be 4-D [N, C, H, W]; got ", x.dim(), "-D of shape ", x.sizes());
  const auto st = x.scalar_type();
  TORCH_CHECK_TYPE(st == at::kFloat || st == at::kDouble || st == at::kHalf || st == at::kBFloat16, op,
                   ": x must be float16, bfloat16, float32 or float64; got ", st);
  if (b.has_value() && b->defined()) {
    TORCH_CHECK_VALUE(b->dim() == 1 && b->size(0) == x.size(1), op, ": b must be 1-D of length C = ",
                      x.size(1), "; got shape ", b->sizes());
    TORCH_CHECK_TYPE(b->scalar_type() == st, op, ": b must have x's dtype ", st, "; got ", b->scalar_type());
    TORCH_CHECK_VALUE(b->device() == x.device(), op, ": b must be on x's device ", x.device(), "; got ",
                      b->device());
  }
}

FilteredLreluPlan plan_filtered_lrelu(const char* op, int64_t N, int64_t C, int64_t in_h, int64_t in_w,
                                      const at::Device& device, at::ScalarType dtype,
                                      const std::optional<at::Tensor>& fu,
                                      const std::optional<at::Tensor>& fd, int64_t up, int64_t down,
                                      at::IntArrayRef padding, double gain, double slope,
                                      std::optional<double> clamp, bool flip_filter) {
  // upfirdn2d's bounds (upfirdn2d.h): within them the int64 geometry below cannot overflow
  TORCH_CHECK_VALUE(up >= 1 && up <= kMaxFactor, op, ": up must be >= 1 and <= ", kMaxFactor, "; got ", up);
  TORCH_CHECK_VALUE(down >= 1 && down <= kMaxFactor, op, ": down must be >= 1 and <= ", kMaxFactor, "; got ", down);
  TORCH_CHECK_VALUE(padding.size() == 4, op, ": padding must be [x0, x1, y0, y1]; got ", padding.size(),
                    " values");
  for (const int64_t v : padding) {
    TORCH_CHECK_VALUE(v >= -kMaxPad && v <= kMaxPad, op, ": padding must be within [-", kMaxPad, ", ", kMaxPad,
                      "]; got ", padding);
  }
  TORCH_CHECK_VALUE(std::isfinite(gain), op, ": gain must be finite; got ", gain);
  TORCH_CHECK_VALUE(std::isfinite(slope), op, ": slope must be finite; got ", slope);
  FilteredLreluPlan p;
  p.N = N, p.C = C, p.up = up, p.down = down;
  p.px0 = padding[0], p.px1 = padding[1], p.py0 = padding[2], p.py1 = padding[3];
  p.gain = gain, p.slope = slope, p.flip_filter = flip_filter;
  if (clamp.has_value()) {
    TORCH_CHECK_VALUE(*clamp >= 0, op, ": clamp must be >= 0 or None; got ", *clamp);
    p.has_clamp = !std::isinf(*clamp);
    p.clamp = *clamp;
  }
  check_filter(op, "fu", fu, device, dtype, p.fu, p.fu_w, p.fu_h, p.fu_separable);
  check_filter(op, "fd", fd, device, dtype, p.fd, p.fd_w, p.fd_h, p.fd_separable);
  p.geo = flrelu_geometry(in_h, in_w, up, down, p.px0, p.px1, p.py0, p.py1, p.fu_w, p.fu_h, p.fd_w, p.fd_h);
  TORCH_CHECK_VALUE(p.geo.UH >= 1 && p.geo.UW >= 1 && p.geo.OH >= 1 && p.geo.OW >= 1, op,
                    ": padding leaves no output: the upsampled size (in*up + pad0 + pad1 - fu_taps + 1) is [",
                    p.geo.UH, ", ", p.geo.UW, "] and the output size (upsampled - fd_taps + down) // down is [",
                    p.geo.OH, ", ", p.geo.OW, "] for input [", in_h, ", ", in_w, "], fu ", p.fu_h, "x", p.fu_w,
                    ", fd ", p.fd_h, "x", p.fd_w, ", up ", up, ", down ", down, ", padding ", padding,
                    "; each must be >= 1");
  return p;
}

void check_filtered_lrelu_state(const char* op, const at::Tensor& state, const FilteredLreluPlan& p,
                                const at::Device& device) {
  TORCH_CHECK_VALUE(state.scalar_type() == at::kByte && state.dim() == 3 && state.size(0) == p.N &&
                        state.size(1) == p.C && state.size(2) == p.geo.state_bytes,
                    op, ": state must be uint8 [", p.N, ", ", p.C, ", ", p.geo.state_bytes,
                    "] as filtered_lrelu returned it; got ", state.scalar_type(), " ", state.sizes());
  TORCH_CHECK_VALUE(state.device() == device, op, ": state must be on x's device ", device, "; got ",
                    state.device());
}

at::Tensor filtered_lrelu_empty(const at::Tensor& like, int64_t h, int64_t w) {
  const bool cl = !like.is_contiguous() && like.is_contiguous(at::MemoryFormat::ChannelsLast);
  return at::empty({like.size(0), like.size(1), h, w},
                   like.options().memory_format(cl ? at::MemoryFormat::ChannelsLast : at::MemoryFormat::Contiguous));
}

FilteredLreluPlan plan_filtered_lrelu_forward(const at::Tensor& x, const std::optional<at::Tensor>& fu,
                                              const std::optional<at::Tensor>& fd,
                                              const std::optional<at::Tensor>& b, int64_t up, int64_t down,
                                              at::IntArrayRef padding, double gain, double slope,
                                              std::optional<double> clamp, bool flip_filter) {
  check_filtered_lrelu_input("filtered_lrelu", x, b);
  return plan_filtered_lrelu("filtered_lrelu", x.size(0), x.size(1), x.size(2), x.size(3), x.device(),
                             x.scalar_type(), fu, fd, up, down, padding, gain, slope, clamp, flip_filter);
}

FilteredLreluPlan plan_filtered_lrelu_masked(const at::Tensor& v, const at::Tensor& state,
                                             const std::optional<at::Tensor>& fu,
                                             const std::optional<at::Tensor>& fd, int64_t up, int64_t down,
                                             at::IntArrayRef padding, double gain, double slope, bool flip_filter) {
  check_filtered_lrelu_input("filtered_lrelu_masked", v, std::nullopt);
  FilteredLreluPlan p =
      plan_filtered_lrelu("filtered_lrelu_masked", v.size(0), v.size(1), v.size(2), v.size(3), v.device(),
                          v.scalar_type(), fu, fd, up, down, padding, gain, slope, std::nullopt, flip_filter);
  check_filtered_lrelu_state("filtered_lrelu_masked", state, p, v.device());
  return p;
}

FilteredLreluPlan plan_filtered_lrelu_grad(const at::Tensor& dy, const at::Tensor& state,
                                           const std::optional<at::Tensor>& fu, const std::optional<at::Tensor>& fd,
                                           at::IntArrayRef in_size, int64_t up, int64_t down,
                                           at::IntArrayRef padding, double gain, double slope, bool flip_filter) {
  check_filtered_lrelu_input("filtered_lrelu_grad", dy, std::nullopt);
  TORCH_CHECK_VALUE(in_size.size() == 2 && in_size[0] >= 0 && in_size[1] >= 0,
                    "filtered_lrelu_grad: in_size must be [H, W] >= 0; got ", in_size);
  FilteredLreluPlan p =
      plan_filtered_lrelu("filtered_lrelu_grad", dy.size(0), dy.size(1), in_size[0], in_size[1], dy.device(),
                          dy.scalar_type(), fu, fd, up, down, padding, gain, slope, std::nullopt, flip_filter);
  TORCH_CHECK_VALUE(dy.size(2) == p.geo.OH && dy.size(3) == p.geo.OW, "filtered_lrelu_grad: dy must be [N, C, ",
                    p.geo.OH, ", ", p.geo.OW, "] for in_size ", in_size, "; got ", dy.sizes());
  check_filtered_lrelu_state("filtered_lrelu_grad", state, p, dy.device());
  return p;
}

TORCH_LIBRARY_FRAGMENT(alae_fast, m) {
  // (y, state): y = D(act(U(x + b))) (csrc/common/filtered_lrelu.h), state the packed 2-bit
  // branch code of every upsampled element, uint8 [N, C, ceil(UH*UW/4)], which the backward
  // reads instead of the upsampled tensor. padding = [x0, x1, y0, y1].
  m.def(
      "filtered_lrelu(Tensor x, Tensor? fu, Tensor? fd, Tensor? b, int up, int down, int[4] padding, "
      "float gain, float slope, float? clamp, bool flip_filter) -> (Tensor, Tensor)");
  // (dx, db): dx = U^T(m * D^T(dy)) with m the derivative of act at each upsampled element
  // (from state), db = dx summed over N, H, W (shape [0] unless bias_grad). in_size = [H, W].
  m.def(
      "filtered_lrelu_grad(Tensor dy, Tensor state, Tensor? fu, Tensor? fd, int[2] in_size, int up, int down, "
      "int[4] padding, float gain, float slope, bool flip_filter, bool bias_grad) -> (Tensor, Tensor)");
  // D(m * U(v)): filtered_lrelu linearised at the saved state (no bias). It is the derivative
  // of filtered_lrelu_grad with respect to dy, and filtered_lrelu_grad is its derivative.
  m.def(
      "filtered_lrelu_masked(Tensor v, Tensor state, Tensor? fu, Tensor? fd, int up, int down, int[4] padding, "
      "float gain, float slope, bool flip_filter) -> Tensor");
}

}  // namespace alae_fast
