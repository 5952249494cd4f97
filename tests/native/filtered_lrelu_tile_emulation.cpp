// Emulation of the fused filtered_lrelu CUDA kernel (csrc/common/filtered_lrelu_tile.h) on the
// CPU: each block's phases run for every thread index in turn, a barrier between phases, with
// the kernel's own phase functions, in a shared-memory buffer of exactly the planned size. The
// results are compared with a direct sum over the definition (every tap of every sample, no
// tiles), on random pass pairs with tap counts 1..14, up/down 1..4, pads -4..8, tile shapes
// 1..9 (or the tile the host would choose), 1..70 threads, strided inputs and outputs, separable,
// 2-D and identity filters, both modes, with and without clamp. Codes must equal the packed
// reference exactly. Built with AddressSanitizer and UBSan by tests/test_filtered_lrelu_tile.py,
// so any index outside a buffer (the shared memory, the state padded to 4 bytes) aborts:
//   g++ -std=c++20 -O1 -g -fsanitize=address,undefined -fno-sanitize-recover=all \
//       -I csrc tests/native/filtered_lrelu_tile_emulation.cpp -o /tmp/fl_tile && /tmp/fl_tile [iters]
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <vector>

#include "common/filtered_lrelu_tile.h"

using namespace alae_fast;

struct Cast {
  template <typename T>
  static double load(T v) { return double(v); }
  template <typename T, typename A>
  static T store(A v) { return static_cast<T>(v); }
};

// z of one pass on one axis, as in the definition: the sample of tap t for output o, if any.
static bool tap_input(int64_t o, int64_t t, int64_t up, int64_t down, int64_t p0, int64_t n_in, int64_t& i) {
  const int64_t j = o * down + t - p0;
  if (j < 0 || j % up != 0) return false;
  i = j / up;
  return i < n_in;
}

struct Pass {
  bool identity, sep;
  std::vector<double> taps;  // as the kernel reads them (the accumulation type, double here)
  int64_t tx, ty;
  double w(int64_t kx, int64_t ky) const {
    if (identity) return 1;
    return sep ? double(taps[kx]) * double(taps[tx + ky]) : double(taps[ky * tx + kx]);
  }
};

// StyleGAN3 pass pairs: forward (U then D) and gradient (D^T then U^T, whose pads are
// taps - 1 - pad of the forward's).
struct Sg3Pair {
  int64_t n_in, u1, p1, p1_hi, t1, d2, p2, p2_hi, t2;
};
constexpr Sg3Pair kSg3[] = {
    {38, 2, 9, 8, 12, 2, 0, 0, 12},    // forward: 38 -> 82 -> 36
    {36, 2, 11, 10, 12, 2, 2, 2, 12},  // gradient: 36 -> 82 -> 38
    {38, 4, 13, 11, 24, 2, 0, 0, 12},  // forward, up 4: 38 -> 152 -> 71
};
constexpr int kSg3Pairs = 3;

// The tile the host chooses for StyleGAN3's shapes must be large: a small one would recompute
// most of the middle region (its halo) in every block.
static bool check_sg3_plans() {
  for (const Sg3Pair& f : kSg3) {
    FlTileAxis a{f.n_in, 0, 0, f.u1, f.p1, f.t1, f.d2, f.p2, f.t2};
    a.n_mid = upfirdn_out_size(f.n_in, f.u1, 1, f.p1, f.p1_hi, f.t1);
    a.n_out = upfirdn_out_size(a.n_mid, 1, f.d2, f.p2, f.p2_hi, f.t2);
    for (int64_t acc : {4, 8}) {
      for (bool sep2 : {true, false}) {
        const FlTilePlan p = fl_choose_tile(a, a, true, sep2, true, acc, 48 * 1024);
        std::printf("StyleGAN3 pair %ld -> %ld -> %ld (up %ld, %ld/%ld taps, fd %s), %ld-byte accumulators: "
                    "tile %ldx%ld, %ld bytes\n", long(a.n_in), long(a.n_mid), long(a.n_out), long(f.u1),
                    long(f.t1), long(f.t2), sep2 ? "separable" : "2-D", long(acc), long(p.th), long(p.tw),
                    long(p.bytes));
        if (p.th * p.tw < (acc == 4 ? 256 : 128)) return false;
      }
    }
  }
  return true;
}

int main(int argc, char** argv) {
  if (!check_sg3_plans()) {
    std::printf("a StyleGAN3 shape gets too small a tile\n");
    return 3;
  }
  const int iters = argc > 1 ? std::atoi(argv[1]) : 3000;
  std::mt19937 rng(4321);
  auto uni = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  std::uniform_real_distribution<double> val(-1, 1);
  int runs = 0, words_checked = 0;
  for (int iter = 0; iter < iters; ++iter) {
    // Axes: a pass-1 (up) and pass-2 (down) pair with random pads on both sides.
    FlTileAxis ax{}, ay{};
    Pass p1{}, p2{};
    p1.identity = uni(0, 5) == 0, p2.identity = uni(0, 5) == 0;
    p1.sep = p1.identity || uni(0, 2) > 0, p2.sep = p2.identity || uni(0, 2) > 0;
    int64_t t1 = p1.identity ? 1 : uni(1, 14), t2 = p2.identity ? 1 : uni(1, 14);
    int64_t u1 = uni(1, 4), d2 = uni(1, 4);
    // The first iterations: a StyleGAN3-T layer (conv output 38 -> 36, up 2, down 2, 12 taps,
    // padding 9/8), its gradient's pass pair, and the same with up 4 and 24-tap fu.
    const Sg3Pair* fixed = iter < kSg3Pairs ? &kSg3[iter] : nullptr;
    if (fixed) {
      p1.identity = p2.identity = false;
      t1 = fixed->t1, t2 = fixed->t2, u1 = fixed->u1, d2 = fixed->d2;
    }
    // a 2-D filter may have another tap count along y
    const int64_t t1y = p1.sep || fixed ? t1 : uni(1, 14), t2y = p2.sep || fixed ? t2 : uni(1, 14);
    for (FlTileAxis* a : {&ax, &ay}) {
      a->u1 = u1, a->d2 = d2, a->t1 = a == &ay ? t1y : t1, a->t2 = a == &ay ? t2y : t2;
      if (fixed) {
        a->n_in = fixed->n_in, a->p1 = fixed->p1, a->p2 = fixed->p2;
        a->n_mid = upfirdn_out_size(a->n_in, u1, 1, a->p1, fixed->p1_hi, a->t1);
        a->n_out = upfirdn_out_size(a->n_mid, 1, d2, a->p2, fixed->p2_hi, a->t2);
        continue;
      }
      a->n_in = uni(1, 13);
      a->p1 = uni(-4, 8), a->p2 = uni(-4, 8);
      a->n_mid = upfirdn_out_size(a->n_in, u1, 1, a->p1, uni(-4, 8), a->t1);
      a->n_out = a->n_mid >= 1 ? upfirdn_out_size(a->n_mid, 1, d2, a->p2, uni(-4, 8), a->t2) : 0;
    }
    if (ax.n_mid < 1 || ay.n_mid < 1 || ax.n_out < 1 || ay.n_out < 1) continue;
    const int64_t mode = uni(0, 1), N = uni(1, 2), C = uni(1, 3), P = N * C;
    for (Pass* p : {&p1, &p2}) {
      p->tx = p == &p1 ? t1 : t2, p->ty = p == &p1 ? t1y : t2y;
      if (p->identity) continue;
      const int64_t n = p->sep ? 2 * p->tx : p->tx * p->ty;
      if (p->sep) {
        for (int64_t k = 0; k < p->tx; ++k) p->taps.push_back(val(rng));
        p->taps.insert(p->taps.end(), p->taps.begin(), p->taps.end());
      } else {
        for (int64_t k = 0; k < n; ++k) p->taps.push_back(val(rng));
      }
    }
    FlFusedArgs a{};
    a.ax = ax, a.ay = ay;
    a.taps1 = p1.identity ? nullptr : p1.taps.data(), a.sep1 = p1.sep, a.scale1 = 1 + uni(0, 3);
    a.taps2 = p2.identity ? nullptr : p2.taps.data(), a.sep2 = p2.sep, a.scale2 = 1;
    a.mode = int(mode), a.gain = 1.4, a.slope = 0.2, a.has_clamp = uni(0, 1) == 1, a.clamp = a.has_clamp ? 0.3 : 0;
    a.N = N, a.C = C;
    // Input: [N, C, H, W] contiguous or channels_last; output the other way round.
    const bool cl_in = uni(0, 1) == 1;
    std::vector<double> in(P * ay.n_in * ax.n_in), bias(C), out(P * ay.n_out * ax.n_out, NAN);
    for (double& v : in) v = val(rng);
    for (double& v : bias) v = val(rng);
    auto strides = [&](bool cl, int64_t h, int64_t w, int64_t* st) {
      if (cl) st[0] = h * w * C, st[1] = 1, st[2] = w * C, st[3] = C;
      else st[0] = C * h * w, st[1] = h * w, st[2] = w, st[3] = 1;
    };
    strides(cl_in, ay.n_in, ax.n_in, a.in_st);
    strides(!cl_in, ay.n_out, ax.n_out, a.out_st);
    a.in = in.data(), a.out = out.data(), a.bias = (mode == 0 && uni(0, 1)) ? bias.data() : nullptr;
    const int64_t n_mid = ay.n_mid * ax.n_mid;
    a.state_bytes = (n_mid + 3) / 4;
    const int64_t padded = (P * a.state_bytes + 3) / 4 * 4;
    // The state as the host allocates it: a multiple of 4 bytes, zeroed for mode 0.
    std::unique_ptr<unsigned int[]> words(new unsigned int[padded / 4]);
    unsigned char* state = reinterpret_cast<unsigned char*>(words.get());
    std::vector<unsigned char> ref_codes(P * n_mid);
    for (unsigned char& k : ref_codes) k = static_cast<unsigned char>(uni(0, 2));
    std::memset(state, 0, padded);
    if (mode == 1) {
      for (int64_t pl = 0; pl < P; ++pl) {
        for (int64_t i = 0; i < n_mid; ++i) state[pl * a.state_bytes + i / 4] |= ref_codes[pl * n_mid + i] << (2 * (i % 4));
      }
    }
    a.codes = state;
    // Tile: random, or the host's choice under a random shared-memory limit.
    const bool codes = mode == 0;
    if (uni(0, 3) == 0) {
      a.plan = fl_choose_tile(ay, ax, a.sep1, a.sep2, codes, sizeof(double), uni(200, 48 * 1024));
      if (a.plan.th == 0) continue;
    } else {
      a.plan = fl_tile_plan(ay, ax, uni(1, 9), uni(1, 9), a.sep1, a.sep2, codes, sizeof(double));
    }
    const int nt = uni(1, 70);
    std::unique_ptr<unsigned char[]> smem(new unsigned char[a.plan.bytes]);
    double* sm = reinterpret_cast<double*>(smem.get());
    const unsigned char* sm_codes = reinterpret_cast<const unsigned char*>(sm + a.plan.acc_elems);
    for (int64_t tile = 0; tile < a.plan.tiles_y * a.plan.tiles_x; ++tile) {
      const FlTile t = fl_tile_of(a, tile);
      for (int64_t pl = 0; pl < P; ++pl) {
        for (int id = 0; id < nt; ++id) fl_phase_load<double, double, Cast>(a, t, pl, sm, id, nt);
        if (a.sep1) for (int id = 0; id < nt; ++id) fl_phase_pass1_rows<double>(a, t, sm, id, nt);
        for (int id = 0; id < nt; ++id) fl_phase_pass1<double>(a, t, sm, id, nt);
        for (int id = 0; id < nt; ++id) fl_phase_pointwise<double>(a, t, pl, sm, id, nt);
        if (mode == 0) for (int id = 0; id < nt; ++id) fl_phase_codes(a, t, pl, sm_codes, id, nt);
        if (a.sep2) for (int id = 0; id < nt; ++id) fl_phase_pass2_cols<double>(a, t, sm, id, nt);
        for (int id = 0; id < nt; ++id) fl_phase_store<double, double, Cast>(a, t, pl, sm, id, nt);
      }
    }
    // Reference: the definition, plane by plane.
    for (int64_t pl = 0; pl < P; ++pl) {
      const int64_t n = pl / C, c = pl % C;
      std::vector<double> mid(n_mid, 0.0);
      for (int64_t my = 0; my < ay.n_mid; ++my) {
        for (int64_t mx = 0; mx < ax.n_mid; ++mx) {
          double s = 0;
          for (int64_t ky = 0; ky < t1y; ++ky) {
            int64_t iy;
            if (!tap_input(my, ky, u1, 1, ay.p1, ay.n_in, iy)) continue;
            for (int64_t kx = 0; kx < t1; ++kx) {
              int64_t ix;
              if (!tap_input(mx, kx, u1, 1, ax.p1, ax.n_in, ix)) continue;
              double v = in[n * a.in_st[0] + c * a.in_st[1] + iy * a.in_st[2] + ix * a.in_st[3]];
              if (a.bias) v += bias[c];
              s += p1.w(kx, ky) * v;
            }
          }
          s *= a.scale1;
          const int64_t i = my * ax.n_mid + mx;
          if (mode == 0) {
            const bool pos = s > 0;
            double y = (pos ? s : s * a.slope) * a.gain;
            unsigned char code = pos ? kFlPos : kFlNeg;
            if (a.has_clamp) {
              if (!(y >= -a.clamp && y <= a.clamp)) code = kFlClamped;
              y = std::fmin(std::fmax(y, -a.clamp), a.clamp);
            }
            ref_codes[pl * n_mid + i] = code;
            mid[i] = y;
          } else {
            const int k = ref_codes[pl * n_mid + i];
            mid[i] = k == kFlClamped ? 0 : s * (k == kFlPos ? a.gain : a.gain * a.slope);
          }
        }
      }
      for (int64_t oy = 0; oy < ay.n_out; ++oy) {
        for (int64_t ox = 0; ox < ax.n_out; ++ox) {
          double s = 0;
          for (int64_t ky = 0; ky < t2y; ++ky) {
            int64_t my;
            if (!tap_input(oy, ky, 1, d2, ay.p2, ay.n_mid, my)) continue;
            for (int64_t kx = 0; kx < t2; ++kx) {
              int64_t mx;
              if (!tap_input(ox, kx, 1, d2, ax.p2, ax.n_mid, mx)) continue;
              s += p2.w(kx, ky) * mid[my * ax.n_mid + mx];
            }
          }
          s *= a.scale2;
          const double got = out[n * a.out_st[0] + c * a.out_st[1] + oy * a.out_st[2] + ox * a.out_st[3]];
          if (!(std::fabs(got - s) <= 1e-9 * (1 + std::fabs(s)))) {
            std::printf("mismatch: iter %d mode %ld plane %ld at (%ld, %ld): %.17g vs %.17g "
                        "(tile %ldx%ld, %ld threads, sep %d/%d)\n",
                        iter, long(mode), long(pl), long(oy), long(ox), got, s, long(a.plan.th),
                        long(a.plan.tw), long(nt), int(a.sep1), int(a.sep2));
            return 1;
          }
        }
      }
    }
    if (mode == 0) {
      std::vector<unsigned char> want(padded, 0);
      for (int64_t pl = 0; pl < P; ++pl) {
        for (int64_t i = 0; i < n_mid; ++i) want[pl * a.state_bytes + i / 4] |= ref_codes[pl * n_mid + i] << (2 * (i % 4));
      }
      if (std::memcmp(want.data(), state, padded) != 0) {
        std::printf("codes differ: iter %d (tile %ldx%ld, %ld threads)\n", iter, long(a.plan.th), long(a.plan.tw),
                    long(nt));
        return 1;
      }
      words_checked += int(padded / 4);
    }
    ++runs;
  }
  std::printf("ok: %d random fused launches matched the definition (%d state words checked)\n", runs,
              words_checked);
  return runs > iters / 4 ? 0 : 2;
}
