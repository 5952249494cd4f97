// Lets one header of per-element math serve both g++ (CPU kernels) and nvcc (CUDA kernels).
#pragma once

#if defined(__CUDACC__)
#define AF_HD __host__ __device__ __forceinline__
#else
#define AF_HD inline
#endif

#include <math.h>
#include <stdint.h>

#if !defined(__CUDACC__) && defined(ALAE_FAST_LIBMVEC)
// Declares glibc's vector variants (libmvec) of the math functions the activations use, so
// loops calling them vectorize (5-15x faster tanh/exp on the CPU; libmvec is accurate to
// 4 ulp). CMake defines ALAE_FAST_LIBMVEC only where a test program links against them.
extern "C" {
__attribute__((simd("notinbranch"))) float expf(float) noexcept;
__attribute__((simd("notinbranch"))) float expm1f(float) noexcept;
__attribute__((simd("notinbranch"))) float log1pf(float) noexcept;
__attribute__((simd("notinbranch"))) float tanhf(float) noexcept;
__attribute__((simd("notinbranch"))) double exp(double) noexcept;
__attribute__((simd("notinbranch"))) double expm1(double) noexcept;
__attribute__((simd("notinbranch"))) double log1p(double) noexcept;
__attribute__((simd("notinbranch"))) double tanh(double) noexcept;
}
#endif

namespace alae_fast {

// C math names rather than std:: overloads: they are declared for device code by nvcc
// and for host code by <math.h>, so one spelling compiles in both.
AF_HD float af_exp(float v) { return expf(v); }
AF_HD double af_exp(double v) { return exp(v); }
AF_HD float af_expm1(float v) { return expm1f(v); }
AF_HD double af_expm1(double v) { return expm1(v); }
AF_HD float af_log1p(float v) { return log1pf(v); }
AF_HD double af_log1p(double v) { return log1p(v); }
AF_HD float af_tanh(float v) { return tanhf(v); }
AF_HD double af_tanh(double v) { return tanh(v); }
AF_HD float af_abs(float v) { return fabsf(v); }
AF_HD double af_abs(double v) { return fabs(v); }

// Computation type for a storage type: half types compute in float, the rest in themselves.
template <typename T> struct OpMath { using type = T; };

}  // namespace alae_fast
