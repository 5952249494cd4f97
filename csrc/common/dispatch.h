// Host-side helpers that turn runtime configuration into template arguments, so the
// inner loops see compile-time constants (and the CPU compiler can vectorize them).
// Usable from g++ and from nvcc host code alike; no torch headers.
#pragma once

#include <stdexcept>
#include <type_traits>

#include "activations.h"

namespace alae_fast {

// Storage dtype of a kernel argument, for launchers that see raw pointers only.
enum DType : int { kFloat32 = 0, kFloat64 = 1, kFloat16 = 2, kBFloat16 = 3 };

template <int V>
using IntC = std::integral_constant<int, V>;

template <typename Fn>
void dispatch_act(int act, Fn&& fn) {
  switch (act) {
    case kLinear: fn(IntC<kLinear>{}); break;
    case kRelu: fn(IntC<kRelu>{}); break;
    case kLrelu: fn(IntC<kLrelu>{}); break;
    case kTanh: fn(IntC<kTanh>{}); break;
    case kSigmoid: fn(IntC<kSigmoid>{}); break;
    case kElu: fn(IntC<kElu>{}); break;
    case kSelu: fn(IntC<kSelu>{}); break;
    case kSoftplus: fn(IntC<kSoftplus>{}); break;
    case kSwish: fn(IntC<kSwish>{}); break;
    default: throw std::invalid_argument("alae_fast: unknown activation id");
  }
}

template <typename Fn>
void dispatch_order(int order, Fn&& fn) {
  switch (order) {
    case 0: fn(IntC<0>{}); break;
    case 1: fn(IntC<1>{}); break;
    case 2: fn(IntC<2>{}); break;
    case 3: fn(IntC<3>{}); break;
    default: throw std::invalid_argument("alae_fast: derivative order must be 0..3");
  }
}

}  // namespace alae_fast
