// Activation functions of bias_act and their first three derivatives, written once for
// the CPU and CUDA kernels. ORDER 0 is the function itself; ORDER k is d^k f / dz^k.
// The third derivative exists so that the gradient of the second-order gradient op is
// exact (bias_act's autograd asks for ORDER+1 when it differentiates ORDER).
//
// NaN and inf follow PyTorch's own kernels (the references compose them), so a diverging
// run shows up the same way on every path. Each piecewise branch is therefore written as
// PyTorch tests it: relu asks `z <= 0` (false for NaN, so NaN takes the z branch: relu(NaN) =
// NaN, relu'(NaN) = 1 as threshold_backward gives); lrelu asks `z > 0` (NaN takes the alpha
// branch, as leaky_relu_backward). elu/selu derivatives are NaN at NaN: PyTorch's own elu
// backward is not consistent there (1 in its scalar loop, NaN in its vector loop), and NaN is
// the answer that hides nothing. For every finite z both spellings pick the same branch, so
// finite results are unchanged.
#pragma once

#include "host_device.h"

namespace alae_fast {

enum Act : int {
  kLinear = 0,
  kRelu = 1,
  kLrelu = 2,
  kTanh = 3,
  kSigmoid = 4,
  kElu = 5,
  kSelu = 6,
  kSoftplus = 7,
  kSwish = 8,
  kNumActs = 9,
};

// Constants of SELU (Klambauer et al. 2017), as torch.nn.functional.selu uses them.
constexpr double kSeluAlpha = 1.6732632423543772848170429916717;
constexpr double kSeluScale = 1.0507009873554804934193349852946;
// torch.nn.functional.softplus returns z unchanged above this threshold.
constexpr double kSoftplusThreshold = 20.0;

template <typename T>
AF_HD T af_sigmoid(T z) {
  return T(1) / (T(1) + af_exp(-z));
}

template <int ACT, int ORDER, typename T>
AF_HD T act_eval(T z, T alpha) {
  static_assert(ORDER >= 0 && ORDER <= 3, "derivative order must be 0..3");
  if constexpr (ACT == kLinear) {
    return ORDER == 0 ? z : (ORDER == 1 ? T(1) : T(0));
  } else if constexpr (ACT == kRelu) {
    if constexpr (ORDER == 0) return z <= T(0) ? T(0) : z;
    else if constexpr (ORDER == 1) return z <= T(0) ? T(0) : T(1);
    else return T(0);
  } else if constexpr (ACT == kLrelu) {
    if constexpr (ORDER == 0) return z > T(0) ? z : z * alpha;
    else if constexpr (ORDER == 1) return z > T(0) ? T(1) : alpha;
    else return T(0);
  } else if constexpr (ACT == kTanh) {
    T t = af_tanh(z);
    T d = T(1) - t * t;
    if constexpr (ORDER == 0) return t;
    else if constexpr (ORDER == 1) return d;
    else if constexpr (ORDER == 2) return T(-2) * t * d;
    else return d * (T(6) * t * t - T(2));
  } else if constexpr (ACT == kSigmoid) {
    T s = af_sigmoid(z);
    T d = s * (T(1) - s);
    if constexpr (ORDER == 0) return s;
    else if constexpr (ORDER == 1) return d;
    else if constexpr (ORDER == 2) return d * (T(1) - T(2) * s);
    else return d * (T(1) - T(6) * s + T(6) * s * s);
  } else if constexpr (ACT == kElu || ACT == kSelu) {
    // elu: alpha * (e^z - 1) below zero; selu: the same with fixed alpha, times a scale.
    T a = ACT == kElu ? alpha : T(kSeluAlpha);
    T scale = ACT == kElu ? T(1) : T(kSeluScale);
    if constexpr (ORDER == 0) return scale * (z > T(0) ? z : a * af_expm1(z));
    else if constexpr (ORDER == 1) return scale * (z > T(0) ? T(1) : a * af_exp(z));
    else return scale * (z > T(0) ? T(0) : a * af_exp(z));
  } else if constexpr (ACT == kSoftplus) {
    if constexpr (ORDER == 0) return z > T(kSoftplusThreshold) ? z : af_log1p(af_exp(z));
    else {
      T s = af_sigmoid(z);
      T d = s * (T(1) - s);
      if constexpr (ORDER == 1) return s;
      else if constexpr (ORDER == 2) return d;
      else return d * (T(1) - T(2) * s);
    }
  } else if constexpr (ACT == kSwish) {
    T s = af_sigmoid(z);
    T d = s * (T(1) - s);
    T u = T(1) - T(2) * s;
    if constexpr (ORDER == 0) return z * s;
    else if constexpr (ORDER == 1) return s + z * d;
    else if constexpr (ORDER == 2) return d * (T(2) + z * u);
    else return d * (u * (T(3) + z * u) - T(2) * z * d);
  } else {
    static_assert(ACT >= 0 && ACT < kNumActs, "unknown activation");
    return z;
  }
}

// g * f'(z) from d1 = f'(z), as PyTorch's backward forms it: relu SELECTS (threshold_backward
// gives 0 where the unit is off, even for a NaN or inf g), every other activation multiplies.
// For finite g the two agree (d1 is 0 or 1).
template <int ACT, typename T>
AF_HD T chain_d1(T d1, T g) {
  if constexpr (ACT == kRelu) return d1 != T(0) ? g : T(0);
  else return d1 * g;
}

// Clamp that propagates NaN (comparisons with NaN are false, so NaN falls through).
template <typename T>
AF_HD T clamp_sym(T v, T c) {
  return v > c ? c : (v < -c ? -c : v);
}

// The clamp's derivative: 1 inside [-c, c] (bounds included), else 0; 0 for NaN, as
// torch.clamp's backward (which asks -c <= v && v <= c).
template <typename T>
AF_HD bool clamp_pass(T v, T c) {
  return af_abs(v) <= c;
}

// ORDER 0: y = clamp(f(z) * gain, -c, c) (g unused).
// ORDER k > 0: (g * gain, or 0 where the forward clamp cut) * f^(k)(z). The clamp is
// piecewise linear, so it adds no higher-order terms. The mask applies to the cotangent
// before the activation's derivative, as in the reference's chain: where f^(k)(z) is NaN the
// result is NaN even if the clamp cut. has_clamp is loop-invariant: it spares the forward
// recomputation that the mask needs when there is no clamp.
template <int ACT, int ORDER, typename T>
AF_HD T bias_act_elem(T z, T g, T alpha, T gain, T clamp, bool has_clamp) {
  if constexpr (ORDER == 0) {
    T y = act_eval<ACT, 0>(z, alpha) * gain;
    return has_clamp ? clamp_sym(y, clamp) : y;
  } else {
    T gg = g * gain;
    if (has_clamp && !clamp_pass(act_eval<ACT, 0>(z, alpha) * gain, clamp)) gg = T(0);
    if constexpr (ORDER == 1) return chain_d1<ACT>(act_eval<ACT, 1>(z, alpha), gg);
    else return gg * act_eval<ACT, ORDER>(z, alpha);
  }
}

}  // namespace alae_fast
