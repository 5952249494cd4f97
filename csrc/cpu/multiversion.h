// One spelling of the function multiversioning every CPU kernel's inner loops use.
//
// The library is built for the x86-64 baseline (so one wheel runs anywhere), and the loops
// that carry the elementwise work are compiled three more ways: x86-64-v4 (AVX-512 F/BW/DQ/VL),
// x86-64-v3 (AVX2, FMA, F16C) and the baseline; glibc's loader picks the widest the running
// CPU supports (GCC target_clones). The AVX-512 clone matters for the half types: their
// conversions to and from float are integer shuffles and rounding, compute-bound at AVX2
// width (bfloat16 bias_act measured 2.2x faster at AVX-512 width on the CI machine's EPYC);
// float32 loops are memory-bound at either width. Elsewhere (clang, other CPUs) the macro
// is empty and the loops compile once for the target.
//
// upfirdn2d does not use it: its row kernels are called through function-pointer tables,
// which a clone cannot inline (the pointers would name baseline functions), so it compiles
// its whole kernel family once per instruction set instead (csrc/cpu/upfirdn2d.cpp).
#pragma once

// The sanitizer build (ALAE_FAST_SANITIZE) compiles each loop once: its instrumentation is
// the same in every clone, and three clones triple its compile time.
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__) && \
    !defined(ALAE_FAST_SANITIZE)
#define AF_CPU_MULTIVERSION __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define AF_CPU_MULTIVERSION
#endif
