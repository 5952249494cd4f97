// Blocks of float16 (c10::Half) widened to float32 and narrowed back with the CPU's F16C
// instructions where it has them.
//
// c10::Half converts with integer bit manipulation unless the translation unit is compiled
// with F16C enabled (__F16C__), which a portable wheel's is not; the multiversioned clones
// (multiversion.h) do not define it either, so float16 loops ran about 2x slower than
// bfloat16 ones, whose conversion is a shift. These helpers pick the F16C path once, at the
// first call, from the running CPU. Both paths round to nearest-even, as c10::Half does, so
// results do not depend on which one ran.
#pragma once

#include <c10/util/Half.h>

#include <cstdint>

#if (defined(__GNUC__) || defined(__clang__)) && defined(__x86_64__)
#include <immintrin.h>
#define AF_HALF_CONVERT_F16C 1
#else
#define AF_HALF_CONVERT_F16C 0
#endif

namespace alae_fast {
namespace half_convert {

#if AF_HALF_CONVERT_F16C
__attribute__((target("avx,f16c"))) inline void widen_f16c(const c10::Half* src, float* dst, int64_t n) {
  const uint16_t* s = reinterpret_cast<const uint16_t*>(src);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(s + i))));
  }
  for (; i < n; ++i) dst[i] = _cvtsh_ss(s[i]);
}

__attribute__((target("avx,f16c"))) inline void narrow_f16c(const float* src, c10::Half* dst, int64_t n) {
  uint16_t* d = reinterpret_cast<uint16_t*>(dst);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    _mm_storeu_si128(reinterpret_cast<__m128i*>(d + i),
                     _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
  }
  for (; i < n; ++i) d[i] = _cvtss_sh(src[i], _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
}

inline bool cpu_has_f16c() {
  static const bool ok = __builtin_cpu_supports("avx") && __builtin_cpu_supports("f16c");
  return ok;
}
#endif

// dst[i] = float(src[i]) for i < n.
inline void widen(const c10::Half* src, float* dst, int64_t n) {
#if AF_HALF_CONVERT_F16C
  if (cpu_has_f16c()) return widen_f16c(src, dst, n);
#endif
  for (int64_t i = 0; i < n; ++i) dst[i] = static_cast<float>(src[i]);
}

// dst[i] = Half(src[i]) for i < n, rounded to nearest-even.
inline void narrow(const float* src, c10::Half* dst, int64_t n) {
#if AF_HALF_CONVERT_F16C
  if (cpu_has_f16c()) return narrow_f16c(src, dst, n);
#endif
  for (int64_t i = 0; i < n; ++i) dst[i] = static_cast<c10::Half>(src[i]);
}

}  // namespace half_convert
}  // namespace alae_fast
