// CUDA kernels of upfirdn2d.
//
// Tiled kernel: each block owns a tile of output pixels (NCHW: th x tw pixels of one plane;
// channels_last: th x tw pixels x 32 channels), stages the input region the tile reads in
// shared memory (zero outside the image, converted to the accumulation type), then every
// output is a polyphase sum over the taps that meet real samples. A block walks over
// planes (channel groups) with a grid-stride loop, loading the taps once. Up 2, down 2 and
// no resampling with up to 8 taps per axis have compile-time factors and unrolled tap loops;
// everything else runs the same kernel with run-time factors. When even a 1x1 tile's input
// would not fit in shared memory (huge filters or factors), a direct kernel reads global
// memory. Global offsets are 64-bit; tile-local indices are 32-bit.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>

#include "../common/dispatch.h"
#include "cuda_convert.cuh"
#include "launch_limits.cuh"
#include "../common/upfirdn2d.h"
#include "upfirdn2d.cuh"

namespace alae_fast {
namespace {

constexpr int kThreads = 256;
constexpr int kChannelsPerBlock = 32;  // channels_last: one warp's worth of channels

struct Geo {
  int64_t N, C, H, W, Ho, Wo;
  int64_t ux, uy, dx, dy, px0, py0;
  int fw, fh;
  int tw, th;          // output tile
  int tin_w, tin_h;    // input tile it reads
  int64_t tiles_x;
  int64_t tiles;       // tiles_x * tiles along y: the kernel loops over them (gridDim.x may be fewer)
  int64_t groups;      // NCHW: N*C planes; channels_last: N * cgroups
  int64_t cgroups;     // channels_last: ceil(C / kChannelsPerBlock)
};

// Tap (ty, tx) in correlation order with the gain folded in, from f as the caller gave it
// (in the accumulation type A: float64 taps for float64 x).
template <typename A>
__device__ __forceinline__ A tap_at(const A* f, bool separable, bool flip, int64_t fh, int64_t fw,
                                    int64_t ty, int64_t tx, A gain) {
  if (f == nullptr) return gain;
  const int64_t sy = flip ? ty : fh - 1 - ty, sx = flip ? tx : fw - 1 - tx;
  return (separable ? A(f[sy]) * A(f[sx]) : A(f[sy * fw + sx])) * gain;
}

// UP, DOWN: compile-time factors of both axes, or 0 for run-time ones. MAXT: compile-time
// bound on the taps per axis (unrolled loops), or 0 for run-time loops.
template <typename T, bool CL, int UP, int DOWN, int MAXT>
__global__ void __launch_bounds__(kThreads)
upfirdn2d_tiled(const T* __restrict__ x, T* __restrict__ y, const typename Acc<T>::type* __restrict__ f,
                bool separable, bool flip, typename Acc<T>::type gain, Geo g) {
  using A = typename Acc<T>::type;
  constexpr int CC = CL ? kChannelsPerBlock : 1;
  extern __shared__ __align__(16) unsigned char smem[];
  A* taps = reinterpret_cast<A*>(smem);
  A* tile = taps + g.fh * g.fw;
  const int64_t ux = UP ? UP : g.ux, uy = UP ? UP : g.uy;
  const int64_t dx = DOWN ? DOWN : g.dx, dy = DOWN ? DOWN : g.dy;

  for (int i = threadIdx.x; i < g.fh * g.fw; i += blockDim.x) {
    taps[i] = tap_at<A>(f, separable, flip, g.fh, g.fw, i / g.fw, i % g.fw, gain);
  }
  const int tile_elems = g.tin_h * g.tin_w * CC;
  const int out_elems = g.th * g.tw * CC;

  for (int64_t tl = blockIdx.x; tl < g.tiles; tl += gridDim.x) {
    const int64_t ox0 = (tl % g.tiles_x) * g.tw, oy0 = (tl / g.tiles_x) * g.th;
    const int64_t ix0 = -fdiv(g.px0 - ox0 * dx, ux);  // first input column / row the tile reads
    const int64_t iy0 = -fdiv(g.py0 - oy0 * dy, uy);
    for (int64_t grp = blockIdx.y; grp < g.groups; grp += gridDim.y) {
      const int64_t n = CL ? grp / g.cgroups : 0;
      const int64_t c0 = CL ? (grp % g.cgroups) * CC : 0;
      __syncthreads();  // the taps are written; the previous group's tile is no longer read
      for (int i = threadIdx.x; i < tile_elems; i += blockDim.x) {
        const int c = i % CC, r = i / CC;
        const int64_t ix = ix0 + r % g.tin_w, iy = iy0 + r / g.tin_w;
        A v = A(0);
        if (iy >= 0 && iy < g.H && ix >= 0 && ix < g.W && (!CL || c0 + c < g.C)) {
          const int64_t off = CL ? ((n * g.H + iy) * g.W + ix) * g.C + c0 + c : (grp * g.H + iy) * g.W + ix;
          v = to_acc(x[off]);
        }
        tile[i] = v;
      }
      __syncthreads();
      for (int i = threadIdx.x; i < out_elems; i += blockDim.x) {
        const int c = i % CC, r = i / CC;
        const int64_t ox = ox0 + r % g.tw, oy = oy0 + r / g.tw;
        if (ox >= g.Wo || oy >= g.Ho || (CL && c0 + c >= g.C)) continue;
        const int tx0 = static_cast<int>(pmod(g.px0 - ox * dx, ux));
        const int ty0 = static_cast<int>(pmod(g.py0 - oy * dy, uy));
        const int jx = static_cast<int>((ox * dx + tx0 - g.px0) / ux - ix0);  // tile-local
        const int jy = static_cast<int>((oy * dy + ty0 - g.py0) / uy - iy0);
        const A* t0 = tile + (jy * g.tin_w + jx) * CC + c;
        A acc = A(0);
        if constexpr (MAXT > 0) {
          constexpr int K = (MAXT + (UP ? UP : 1) - 1) / (UP ? UP : 1);
#pragma unroll
          for (int ky = 0; ky < K; ++ky) {
            const int ty = ty0 + ky * static_cast<int>(uy);
            if (ty < g.fh) {
#pragma unroll
              for (int kx = 0; kx < K; ++kx) {
                const int tx = tx0 + kx * static_cast<int>(ux);
                if (tx < g.fw) acc += taps[ty * g.fw + tx] * t0[(ky * g.tin_w + kx) * CC];
              }
            }
          }
        } else {
          for (int ty = ty0, ky = 0; ty < g.fh; ty += static_cast<int>(uy), ++ky) {
            for (int tx = tx0, kx = 0; tx < g.fw; tx += static_cast<int>(ux), ++kx) {
              acc += taps[ty * g.fw + tx] * t0[(ky * g.tin_w + kx) * CC];
            }
          }
        }
        const int64_t off = CL ? ((n * g.Ho + oy) * g.Wo + ox) * g.C + c0 + c : (grp * g.Ho + oy) * g.Wo + ox;
        y[off] = from_acc<T>(acc);
      }
    }
  }
}

// One thread per output, straight from global memory: for filters or factors so large that
// even one output's input region does not fit in shared memory.
template <typename T, bool CL>
__global__ void __launch_bounds__(kThreads)
upfirdn2d_direct(const T* __restrict__ x, T* __restrict__ y, const typename Acc<T>::type* __restrict__ f,
                 bool separable, bool flip, typename Acc<T>::type gain, Geo g) {
  using A = typename Acc<T>::type;
  const int64_t total = g.N * g.C * g.Ho * g.Wo;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    int64_t n, c, oy, ox;
    if (CL) {
      c = i % g.C;
      ox = (i / g.C) % g.Wo;
      oy = (i / (g.C * g.Wo)) % g.Ho;
      n = i / (g.C * g.Wo * g.Ho);
    } else {
      ox = i % g.Wo;
      oy = (i / g.Wo) % g.Ho;
      c = (i / (g.Wo * g.Ho)) % g.C;
      n = i / (g.Wo * g.Ho * g.C);
    }
    const Phase px = phase_of(ox, g.ux, g.dx, g.px0), py = phase_of(oy, g.uy, g.dy, g.py0);
    A acc = A(0);
    for (int64_t ty = py.t0, iy = py.i0; ty < g.fh; ty += g.uy, ++iy) {
      if (iy < 0 || iy >= g.H) continue;
      for (int64_t tx = px.t0, ix = px.i0; tx < g.fw; tx += g.ux, ++ix) {
        if (ix < 0 || ix >= g.W) continue;
        const int64_t off = CL ? ((n * g.H + iy) * g.W + ix) * g.C + c : ((n * g.C + c) * g.H + iy) * g.W + ix;
        acc += tap_at<A>(f, separable, flip, g.fh, g.fw, ty, tx, gain) *
               to_acc(x[off]);
      }
    }
    y[i] = from_acc<T>(acc);
  }
}

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Input extent of `t` consecutive outputs on one axis, an upper bound: outputs o0..o0+t-1
// read inputs ceil((o0*down - p0)/up) .. floor(((o0+t-1)*down + taps-1 - p0)/up), at most
// ((t-1)*down + taps-1)/up + 1 of them. In 64 bits: it is compared with the shared-memory
// budget before anything narrows it to int.
int64_t tile_in(int64_t t, int64_t down, int64_t up, int64_t taps) {
  return ((t - 1) * down + taps - 1) / up + 2;
}

template <typename T, bool CL, int UP, int DOWN, int MAXT>
void launch_tiled(const UpFirDn2dCudaArgs& a, const Geo& g, size_t smem, cudaStream_t stream) {
  const dim3 grid(static_cast<unsigned>(std::min<int64_t>(g.tiles, kMaxGridX)),
                  static_cast<unsigned>(std::min<int64_t>(g.groups, kMaxGridYZ)));
  upfirdn2d_tiled<T, CL, UP, DOWN, MAXT><<<grid, kThreads, smem, stream>>>(
      static_cast<const T*>(a.x), static_cast<T*>(a.y),
      static_cast<const typename Acc<T>::type*>(a.f), a.separable, a.flip_filter,
      static_cast<typename Acc<T>::type>(a.gain), g);
}

template <typename T, bool CL>
void launch(const UpFirDn2dCudaArgs& a, Geo g, cudaStream_t stream) {
  using A = typename Acc<T>::type;
  const int cc = CL ? kChannelsPerBlock : 1;
  // Start from a tile of 2048 outputs (8 per thread) and halve it until its input fits.
  int th = CL ? 8 : 32, tw = CL ? 8 : 64;
  while (th > 1 && th / 2 >= g.Ho) th /= 2;
  while (tw > 1 && tw / 2 >= g.Wo) tw /= 2;
  const size_t budget = 40 * 1024;
  // Shared memory of a th x tw tile: the taps, then the input region (taps + tile below).
  auto bytes = [&](int h, int w) {
    return (static_cast<size_t>(g.fh) * static_cast<size_t>(g.fw) +
            static_cast<size_t>(tile_in(h, g.dy, g.uy, g.fh)) * static_cast<size_t>(tile_in(w, g.dx, g.ux, g.fw)) *
                cc) * sizeof(A);
  };
  while (bytes(th, tw) > budget && (th > 1 || tw > 1)) {
    if (th >= tw && th > 1) th /= 2;
    else tw /= 2;
  }
  if (bytes(th, tw) > budget) {
    const int64_t total = g.N * g.C * g.Ho * g.Wo;
    const unsigned blocks = static_cast<unsigned>(std::min<int64_t>(ceil_div(total, kThreads), 1 << 20));
    upfirdn2d_direct<T, CL><<<blocks, kThreads, 0, stream>>>(
        static_cast<const T*>(a.x), static_cast<T*>(a.y), static_cast<const A*>(a.f), a.separable,
        a.flip_filter, static_cast<A>(a.gain), g);
    return;
  }
  g.th = th, g.tw = tw;
  // Under the budget, so each fits in int (and so do the tile-local indices, all < tin_h*tin_w*cc).
  g.tin_h = static_cast<int>(tile_in(th, g.dy, g.uy, g.fh)), g.tin_w = static_cast<int>(tile_in(tw, g.dx, g.ux, g.fw));
  g.tiles_x = ceil_div(g.Wo, tw);
  g.tiles = g.tiles_x * ceil_div(g.Ho, th);
  const size_t smem = bytes(th, tw);
  const bool small = g.fw <= 8 && g.fh <= 8;
  if (small && g.ux == g.uy && g.dx == g.dy) {
    if (g.ux == 2 && g.dx == 1) return launch_tiled<T, CL, 2, 1, 8>(a, g, smem, stream);
    if (g.ux == 1 && g.dx == 2) return launch_tiled<T, CL, 1, 2, 8>(a, g, smem, stream);
    if (g.ux == 1 && g.dx == 1) return launch_tiled<T, CL, 1, 1, 8>(a, g, smem, stream);
  }
  launch_tiled<T, CL, 0, 0, 0>(a, g, smem, stream);
}

template <typename T>
void launch_layout(const UpFirDn2dCudaArgs& a, const Geo& g, cudaStream_t stream) {
  if (a.channels_last) launch<T, true>(a, g, stream);
  else launch<T, false>(a, g, stream);
}

}  // namespace

cudaError_t upfirdn2d_cuda_launch(const UpFirDn2dCudaArgs& a, cudaStream_t stream) {
  Geo g{};
  g.N = a.N, g.C = a.C, g.H = a.H, g.W = a.W, g.Ho = a.Ho, g.Wo = a.Wo;
  g.ux = a.ux, g.uy = a.uy, g.dx = a.dx, g.dy = a.dy, g.px0 = a.px0, g.py0 = a.py0;
  g.fw = static_cast<int>(a.fw), g.fh = static_cast<int>(a.fh);  // <= 2^20 (plan_upfirdn2d)
  g.cgroups = ceil_div(a.C, kChannelsPerBlock);
  g.groups = a.channels_last ? a.N * g.cgroups : a.N * a.C;
  if (g.groups == 0 || a.Ho == 0 || a.Wo == 0) return cudaSuccess;
  return dispatch_dtype(a.dtype, [&](auto t) {
    launch_layout<decltype(t)>(a, g, stream);
    return cudaGetLastError();
  });
}

}  // namespace alae_fast
