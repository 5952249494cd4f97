// Schema and argument checks of upfirdn2d (its gradient is upfirdn2d itself; see
// alae_fast/ops/upfirdn2d.py).
#include "upfirdn2d.h"

#include <ATen/ATen.h>
#include <torch/library.h>

#include "../common/upfirdn2d.h"

namespace alae_fast {

namespace {
constexpr int64_t kMaxTaps = int64_t(1) << 20;  // per axis
}  // namespace

UpFirDn2dPlan plan_upfirdn2d(const at::Tensor& x, const std::optional<at::Tensor>& f,
                             at::IntArrayRef up, at::IntArrayRef down, at::IntArrayRef padding,
                             bool flip_filter, double gain) {
  TORCH_CHECK_VALUE(x.dim() == 4, "upfirdn2d: x must be 4-D [N, C, H, W]; got ", x.dim(),
                    "-D of shape ", x.sizes());
  const auto st = x.scalar_type();
  TORCH_CHECK_TYPE(st == at::kFloat || st == at::kDouble || st == at::kHalf || st == at::kBFloat16,
                   "upfirdn2d: x must be float16, bfloat16, float32 or float64; got ", st);
  TORCH_CHECK_VALUE(up.size() == 2, "upfirdn2d: up must be [upx, upy]; got ", up.size(), " values");
  TORCH_CHECK_VALUE(down.size() == 2, "upfirdn2d: down must be [downx, downy]; got ", down.size(),
                    " values");
  TORCH_CHECK_VALUE(padding.size() == 4, "upfirdn2d: padding must be [x0, x1, y0, y1]; got ",
                    padding.size(), " values");
  TORCH_CHECK_VALUE(up[0] >= 1 && up[1] >= 1 && up[0] <= kMaxFactor && up[1] <= kMaxFactor,
                    "upfirdn2d: up must be >= 1 and <= ", kMaxFactor, "; got ", up);
  TORCH_CHECK_VALUE(down[0] >= 1 && down[1] >= 1 && down[0] <= kMaxFactor && down[1] <= kMaxFactor,
                    "upfirdn2d: down must be >= 1 and <= ", kMaxFactor, "; got ", down);
  for (const int64_t v : padding) {
    TORCH_CHECK_VALUE(v >= -kMaxPad && v <= kMaxPad, "upfirdn2d: padding must be within [-", kMaxPad,
                      ", ", kMaxPad, "]; got ", padding);
  }

  UpFirDn2dPlan p;
  p.upx = up[0], p.upy = up[1], p.downx = down[0], p.downy = down[1];
  p.padx0 = padding[0], p.padx1 = padding[1], p.pady0 = padding[2], p.pady1 = padding[3];
  p.flip_filter = flip_filter;
  p.gain = gain;
  if (f.has_value() && f->defined()) {
    const at::Tensor& ff = *f;
    TORCH_CHECK_VALUE(at::isFloatingType(ff.scalar_type()),
                      "upfirdn2d: f must be a floating-point tensor; got ", ff.scalar_type());
    TORCH_CHECK_VALUE(ff.dim() == 1 || ff.dim() == 2,
                      "upfirdn2d: f must be 1-D (separable) or 2-D; got ", ff.dim(), "-D");
    TORCH_CHECK_VALUE(ff.numel() > 0, "upfirdn2d: f must not be empty; got shape ", ff.sizes());
    TORCH_CHECK_VALUE(ff.size(0) <= kMaxTaps && ff.size(-1) <= kMaxTaps, "upfirdn2d: f must have at most ",
                      kMaxTaps, " taps per axis; got shape ", ff.sizes());
    TORCH_CHECK_VALUE(ff.device() == x.device(), "upfirdn2d: f must be on x's device ", x.device(),
                      "; got ", ff.device());
    // Taps in x's accumulation type: float64 for float64 x (so a float64 call is float64
    // throughout, and the filter gradient's numerical check sees its own perturbations),
    // float32 for the others.
    p.f = ff.to(st == at::kDouble ? at::kDouble : at::kFloat).contiguous();
    p.separable = ff.dim() == 1;
    p.fw = ff.size(-1);
    p.fh = ff.size(0);
  }
  p.N = x.size(0), p.C = x.size(1), p.H = x.size(2), p.W = x.size(3);
  p.Wo = upfirdn_out_size(p.W, p.upx, p.downx, p.padx0, p.padx1, p.fw);
  p.Ho = upfirdn_out_size(p.H, p.upy, p.downy, p.pady0, p.pady1, p.fh);
  TORCH_CHECK_VALUE(p.Wo >= 1 && p.Ho >= 1,
                    "upfirdn2d: padding leaves no output: output size per axis is "
                    "(in*up + pad0 + pad1 - taps + down) // down, which is [", p.Ho, ", ", p.Wo,
                    "] for x of shape ", x.sizes(), ", filter ", p.fh, "x", p.fw, ", up ", up,
                    ", down ", down, ", padding ", padding);
  // A padding within its bound can still make an output no tensor can address: said here, with
  // the argument, rather than as torch's storage-size overflow.
  int64_t nbytes = static_cast<int64_t>(x.element_size());
  bool overflows = false;
  for (const int64_t d : {p.N, p.C, p.Ho, p.Wo}) overflows |= __builtin_mul_overflow(nbytes, d, &nbytes);
  TORCH_CHECK_VALUE(!overflows, "upfirdn2d: the output [", p.N, ", ", p.C, ", ", p.Ho, ", ", p.Wo, "] of up ", up,
                    ", down ", down, " and padding ", padding, " would take more bytes than a tensor can address "
                    "(2**63)");
  // channels_last is kept only where it is the tensor's real layout; everything else that is
  // not plain contiguous is copied to contiguous. alae_fast/ops/upfirdn2d.py's fake kernel
  // mirrors this rule.
  p.channels_last = !x.is_contiguous() && x.is_contiguous(at::MemoryFormat::ChannelsLast);
  p.x = p.channels_last || x.is_contiguous() ? x : x.contiguous();
  return p;
}

at::Tensor upfirdn2d_empty_output(const UpFirDn2dPlan& p) {
  return at::empty({p.N, p.C, p.Ho, p.Wo},
                   p.x.options().memory_format(p.channels_last ? at::MemoryFormat::ChannelsLast
                                                               : at::MemoryFormat::Contiguous));
}

TORCH_LIBRARY_FRAGMENT(alae_fast, m) {
  // y = downsample(FIR(pad(zero_insert(x, up), padding), f) * gain, down). up = [ux, uy],
  // down = [dx, dy], padding = [x0, x1, y0, y1] (negative = crop). f: 1-D (separable) or
  // 2-D taps applied as a convolution (a correlation when flip_filter), or None; the kernels
  // apply them in x's accumulation type (float64 for float64 x, else float32).
  m.def(
      "upfirdn2d(Tensor x, Tensor? f, int[2] up, int[2] down, SymInt[4] padding, "
      "bool flip_filter, float gain) -> Tensor");
}

}  // namespace alae_fast
