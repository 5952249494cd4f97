// Sanitizer fuzz of the filtered_lrelu CPU engine (csrc/cpu/filtered_lrelu_kernels.h, which
// needs no torch): random passes with tap counts 1..16, up/down 1..4 and pads -4..8 run through
// run_pass (separable and 2-D taps) and the code packing, and are compared with a direct sum
// over the definition. Built with AddressSanitizer, UBSan and libstdc++'s vector annotations,
// every read or write outside a buffer's size aborts:
//   g++ -std=c++20 -O1 -g -fsanitize=address,undefined -fno-sanitize-recover=all \
//       -D_GLIBCXX_SANITIZE_VECTOR=1 -I csrc tests/native/fuzz_filtered_lrelu_engine.cpp -o /tmp/fl_fuzz && /tmp/fl_fuzz
#include <cmath>
#include <cstdio>
#include <random>
#include <vector>

#include "cpu/filtered_lrelu_kernels.h"

using namespace alae_fast;
using namespace alae_fast::flrelu_cpu;

// z[j] of the definition on one axis.
static bool tap_input(const Axis& a, int64_t o, int64_t t, int64_t& i) {
  const int64_t j = o * a.down + t - a.p0;
  if (j < 0 || j % a.up != 0) return false;
  i = j / a.up;
  return i < a.n_in;
}

int main() {
  std::mt19937 rng(1234);
  auto uni = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  int runs = 0;
  for (int iter = 0; iter < 20000; ++iter) {
    Axis ax{uni(0, 9), 0, uni(1, 4), uni(1, 4), uni(-4, 8), uni(1, 16)};
    Axis ay{uni(0, 9), 0, uni(1, 4), uni(1, 4), uni(-4, 8), uni(1, 16)};
    ax.n_out = upfirdn_out_size(ax.n_in, ax.up, ax.down, ax.p0, uni(-4, 8), ax.taps);
    ay.n_out = upfirdn_out_size(ay.n_in, ay.up, ay.down, ay.p0, uni(-4, 8), ay.taps);
    if (ax.n_out < 1 || ay.n_out < 1) continue;
    const bool sep = uni(0, 1) == 1;
    Filter<double> f;
    f.separable = sep;
    f.tx = ax.taps, f.ty = ay.taps;
    std::uniform_real_distribution<double> val(-1, 1);
    if (sep) {
      for (int64_t k = 0; k < ax.taps; ++k) f.wx.push_back(val(rng));
      for (int64_t k = 0; k < ay.taps; ++k) f.wy.push_back(val(rng));
    } else {
      for (int64_t k = 0; k < ax.taps * ay.taps; ++k) f.w2.push_back(val(rng));
    }
    std::vector<double> in(ay.n_in * ax.n_in), out(ay.n_out * ax.n_out);
    for (double& v : in) v = val(rng);
    Scratch<double> s;
    run_pass(in.data(), ax, ay, f, out.data(), s);
    for (int64_t oy = 0; oy < ay.n_out; ++oy) {
      for (int64_t ox = 0; ox < ax.n_out; ++ox) {
        double want = 0;
        for (int64_t ty = 0; ty < ay.taps; ++ty) {
          int64_t iy;
          if (!tap_input(ay, oy, ty, iy)) continue;
          for (int64_t tx = 0; tx < ax.taps; ++tx) {
            int64_t ix;
            if (!tap_input(ax, ox, tx, ix)) continue;
            const double w = sep ? f.wx[tx] * f.wy[ty] : f.w2[ty * ax.taps + tx];
            want += w * in[iy * ax.n_in + ix];
          }
        }
        if (std::fabs(out[oy * ax.n_out + ox] - want) > 1e-9) {
          std::printf("mismatch: iter %d sep %d at (%ld, %ld): %g vs %g\n", iter, int(sep), long(oy), long(ox),
                      out[oy * ax.n_out + ox], want);
          return 1;
        }
      }
    }
    // Codes: packed into exactly (n + 3) / 4 bytes and read back.
    const int64_t n = int64_t(out.size());
    std::vector<uint8_t> codes(n), packed((n + 3) / 4), back(n);
    activate<double, true>(out.data(), codes.data(), n, 1.4, 0.2, 0.5);
    pack_codes(codes.data(), n, packed.data());
    unpack_codes(packed.data(), n, back.data());
    if (codes != back) {
      std::printf("code round trip failed at iter %d\n", iter);
      return 1;
    }
    apply_mask(out.data(), back.data(), n, 1.4, 0.28);
    ++runs;
  }
  std::printf("ok: %d random passes matched the definition\n", runs);
  return 0;
}
