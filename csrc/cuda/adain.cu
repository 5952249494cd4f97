// CUDA kernels of adain and instance_norm_stats (the math: csrc/common/instance_norm.h).
//
// NCHW: one block per (n, c) plane; it reduces the plane, then writes it (the second read
// mostly hits L2). channels_last: the planes interleave, so tiles of 32 channels x 8 pixel
// rows walk chunks of kChunk pixels with the channels across the warp (coalesced); a tile
// kernel leaves per-chunk partial sums, a per-(n, c) kernel finishes the statistics, and a
// second tile kernel writes the output.
#include <stdint.h>

#include "../common/dispatch.h"
#include "../common/instance_norm.h"
#include "adain.cuh"
#include "style_common.cuh"

namespace alae_fast {
namespace {

using namespace style_cuda;

constexpr int kRowThreads = 256;
constexpr int kTX = 32, kTY = 8;  // channels_last tile
constexpr int64_t kChunk = 64;    // pixels per channels_last tile (more if gridDim.y would overflow)

template <typename T>
struct Inputs {
  using A = typename Acc<T>::type;
  const T* x;
  const T* noise;
  const T* nw;
  const T* bias;
  const T* scale;
  const T* shift;
  int64_t N, C, L;
  int64_t chunk;  // pixels per channels_last tile
  int64_t n0;     // first sample of this channels_last launch (gridDim.z <= kMaxGridYZ)
  int64_t r0;     // first (n, c) row of this NCHW launch (gridDim.x <= kMaxGridX)
  int act;
  A alpha, eps;

  __device__ __forceinline__ A nw_of(int64_t c) const { return nw ? to_acc(nw[c]) : A(1); }
  __device__ __forceinline__ A bias_of(int64_t c) const { return bias ? to_acc(bias[c]) : A(0); }
  __device__ __forceinline__ A sigma_of(int64_t r) const { return scale ? A(1) + to_acc(scale[r]) : A(1); }
  __device__ __forceinline__ A shift_of(int64_t r) const { return shift ? to_acc(shift[r]) : A(0); }
  // x + nw * noise + b for the element at offset i of x whose pixel is noise offset q.
  __device__ __forceinline__ A z_at(int64_t i, int64_t q, A nwc, A bc) const {
    A z = to_acc(x[i]) + bc;
    if (noise) z += nwc * to_acc(noise[q]);
    return z;
  }
};

int64_t chunk_pixels(int64_t L) {
  const int64_t min_chunk = (L + kMaxGridYZ - 1) / kMaxGridYZ;  // gridDim.y <= kMaxGridYZ
  return min_chunk > kChunk ? min_chunk : kChunk;
}

int64_t chunks_of(int64_t L) { return (L + chunk_pixels(L) - 1) / chunk_pixels(L); }

template <typename T>
Inputs<T> make_inputs(const AdainCudaArgs& a) {
  using A = typename Acc<T>::type;
  return Inputs<T>{static_cast<const T*>(a.x), static_cast<const T*>(a.noise),
                   static_cast<const T*>(a.noise_weight), static_cast<const T*>(a.bias),
                   static_cast<const T*>(a.scale), static_cast<const T*>(a.shift),
                   a.N, a.C, a.L, chunk_pixels(a.L), 0, 0, a.act, static_cast<A>(a.alpha), static_cast<A>(a.eps)};
}

// --- NCHW: one block per plane -------------------------------------------------------------

template <typename T>
__global__ void __launch_bounds__(kRowThreads) fwd_rows(Inputs<T> in, T* __restrict__ y,
                                                        typename Acc<T>::type* __restrict__ mean_out,
                                                        typename Acc<T>::type* __restrict__ std_out) {
  using A = typename Acc<T>::type;
  __shared__ A shared[2 * 32];
  const int64_t r = in.r0 + blockIdx.x, L = in.L;
  const int64_t n = r / in.C, c = r % in.C;
  const int64_t base = r * L, nbase = n * L;
  const A nwc = in.nw_of(c), bc = in.bias_of(c);
  const A K = row_shift(act_rt<0>(in.act, in.z_at(base, nbase, nwc, bc), in.alpha));
  A s[2] = {A(0), A(0)};
  for (int64_t i = threadIdx.x; i < L; i += blockDim.x) {
    const A d = act_rt<0>(in.act, in.z_at(base + i, nbase + i, nwc, bc), in.alpha) - K;
    s[0] += d;
    s[1] += d * d;
  }
  block_sum(s, shared);
  const RowStats<A> st = row_stats(K, s[0], s[1], static_cast<A>(L), in.eps);
  const A k = st.rstd * in.sigma_of(r), t = in.shift_of(r);
  for (int64_t i = threadIdx.x; i < L; i += blockDim.x) {
    const A d = act_rt<0>(in.act, in.z_at(base + i, nbase + i, nwc, bc), in.alpha) - K;
    y[base + i] = from_acc<T>((d - st.offset) * k + t);
  }
  if (threadIdx.x == 0) {
    mean_out[r] = st.mean;
    std_out[r] = st.std;
  }
}

template <typename T>
struct GradInputs {
  using A = typename Acc<T>::type;
  const T* gy;
  const A* gmean;
  const A* gstd;
  const A* mean;
  const A* std;
  __device__ __forceinline__ A gm_of(int64_t r) const { return gmean ? gmean[r] : A(0); }
  __device__ __forceinline__ A gs_of(int64_t r) const { return gstd ? gstd[r] : A(0); }
};

template <typename T>
struct GradOutputs {
  using A = typename Acc<T>::type;
  T* dz;
  A* sg;
  A* sgx;
  A* sz;
  A* szn;
};

template <typename T>
__global__ void __launch_bounds__(kRowThreads) bwd_rows(Inputs<T> in, GradInputs<T> g, GradOutputs<T> out) {
  using A = typename Acc<T>::type;
  __shared__ A shared[2 * 32];
  const int64_t r = in.r0 + blockIdx.x, L = in.L;
  const int64_t n = r / in.C, c = r % in.C;
  const int64_t base = r * L, nbase = n * L;
  const A nwc = in.nw_of(c), bc = in.bias_of(c);
  const A mu = g.mean[r], rstd = A(1) / g.std[r];
  A s[2] = {A(0), A(0)};
  for (int64_t i = threadIdx.x; i < L; i += blockDim.x) {
    const A gv = to_acc(g.gy[base + i]);
    const A a = act_rt<0>(in.act, in.z_at(base + i, nbase + i, nwc, bc), in.alpha);
    s[0] += gv;
    s[1] += gv * (a - mu);
  }
  block_sum(s, shared);
  const A sg = s[0], sgx = s[1] * rstd;
  const RowGradCoefs<A> k = row_grad_coefs(rstd, in.sigma_of(r), sg, sgx, g.gm_of(r), g.gs_of(r),
                                           static_cast<A>(L));
  const A Br = k.B * rstd;
  A t[2] = {A(0), A(0)};
  for (int64_t i = threadIdx.x; i < L; i += blockDim.x) {
    const A z = in.z_at(base + i, nbase + i, nwc, bc);
    const A da = k.A * to_acc(g.gy[base + i]) + Br * (act_rt<0>(in.act, z, in.alpha) - mu) + k.D;
    const A d1 = act_rt<1>(in.act, z, in.alpha);
    const A d = in.act == kRelu ? chain_d1<kRelu>(d1, da) : d1 * da;  // relu selects, as on the CPU
    out.dz[base + i] = from_acc<T>(d);
    t[0] += d;
    if (in.noise) t[1] += d * to_acc(in.noise[nbase + i]);
  }
  block_sum(t, shared);
  if (threadIdx.x == 0) {
    out.sg[r] = sg;
    out.sgx[r] = sgx;
    out.sz[r] = t[0];
    out.szn[r] = t[1];
  }
}

// --- channels_last: tiles of kTX channels x kTY pixel rows over kChunk pixels --------------

// Tile coordinates: channel c, chunk q (pixels [p0, p1)), sample n.
struct Tile {
  int64_t c, q, n, p0, p1;
  __device__ Tile(int64_t C, int64_t L, int64_t chunk, int64_t n0) {
    c = static_cast<int64_t>(blockIdx.x) * kTX + threadIdx.x;
    q = blockIdx.y;
    n = n0 + blockIdx.z;
    p0 = q * chunk;
    p1 = p0 + chunk < L ? p0 + chunk : L;
  }
};

// Sums v[0..1] over the tile's kTY rows; row 0 writes them to part[((n*chunks + q)*2 + j)*C + c].
template <typename A>
__device__ __forceinline__ void tile_store(A v0, A v1, A* part, const Tile& t, int64_t C) {
  __shared__ A sh[2][kTY][kTX];
  sh[0][threadIdx.y][threadIdx.x] = v0;
  sh[1][threadIdx.y][threadIdx.x] = v1;
  __syncthreads();
  if (threadIdx.y == 0 && t.c < C) {
    A a0 = 0, a1 = 0;
#pragma unroll
    for (int j = 0; j < kTY; ++j) {
      a0 += sh[0][j][threadIdx.x];
      a1 += sh[1][j][threadIdx.x];
    }
    const int64_t base = (t.n * gridDim.y + t.q) * 2 * C;
    part[base + t.c] = a0;
    part[base + C + t.c] = a1;
  }
}

// The shift of plane (n, c): its value at pixel 0 (every tile of the plane computes the same).
template <typename T>
__device__ __forceinline__ typename Acc<T>::type nhwc_shift(const Inputs<T>& in, int64_t n, int64_t c,
                                                            typename Acc<T>::type nwc,
                                                            typename Acc<T>::type bc) {
  return row_shift(act_rt<0>(in.act, in.z_at(n * in.L * in.C + c, n * in.L, nwc, bc), in.alpha));
}

template <typename T>
__global__ void __launch_bounds__(kTX * kTY) fwd_nhwc_partial(Inputs<T> in, typename Acc<T>::type* part) {
  using A = typename Acc<T>::type;
  const Tile t(in.C, in.L, in.chunk, in.n0);
  A s1 = 0, s2 = 0;
  if (t.c < in.C) {
    const A nwc = in.nw_of(t.c), bc = in.bias_of(t.c);
    const A K = nhwc_shift(in, t.n, t.c, nwc, bc);
    for (int64_t p = t.p0 + threadIdx.y; p < t.p1; p += kTY) {
      const int64_t q = t.n * in.L + p;
      const A d = act_rt<0>(in.act, in.z_at(q * in.C + t.c, q, nwc, bc), in.alpha) - K;
      s1 += d;
      s2 += d * d;
    }
  }
  tile_store(s1, s2, part, t, in.C);
}

// Per (n, c): statistics from the partial sums; coef = [mean - shift | k | t], each [N*C].
template <typename T>
__global__ void fwd_nhwc_finish(Inputs<T> in, int64_t chunks, const typename Acc<T>::type* part,
                                typename Acc<T>::type* coef, typename Acc<T>::type* mean_out,
                                typename Acc<T>::type* std_out) {
  using A = typename Acc<T>::type;
  const int64_t r = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x, NC = in.N * in.C;
  if (r >= NC) return;
  const int64_t n = r / in.C, c = r % in.C;
  const A nwc = in.nw_of(c), bc = in.bias_of(c);
  A s1 = 0, s2 = 0;
  for (int64_t q = 0; q < chunks; ++q) {
    s1 += part[(n * chunks + q) * 2 * in.C + c];
    s2 += part[(n * chunks + q) * 2 * in.C + in.C + c];
  }
  const RowStats<A> st = row_stats(nhwc_shift(in, n, c, nwc, bc), s1, s2, static_cast<A>(in.L), in.eps);
  coef[r] = st.offset;
  coef[NC + r] = st.rstd * in.sigma_of(r);
  coef[2 * NC + r] = in.shift_of(r);
  mean_out[r] = st.mean;
  std_out[r] = st.std;
}

template <typename T>
__global__ void __launch_bounds__(kTX * kTY) fwd_nhwc_apply(Inputs<T> in, const typename Acc<T>::type* coef,
                                                            T* __restrict__ y) {
  using A = typename Acc<T>::type;
  const Tile t(in.C, in.L, in.chunk, in.n0);
  if (t.c >= in.C) return;
  const int64_t NC = in.N * in.C, r = t.n * in.C + t.c;
  const A nwc = in.nw_of(t.c), bc = in.bias_of(t.c), m1 = coef[r], k = coef[NC + r], sh = coef[2 * NC + r];
  const A K = nhwc_shift(in, t.n, t.c, nwc, bc);
  for (int64_t p = t.p0 + threadIdx.y; p < t.p1; p += kTY) {
    const int64_t q = t.n * in.L + p;
    const A d = act_rt<0>(in.act, in.z_at(q * in.C + t.c, q, nwc, bc), in.alpha) - K;
    y[q * in.C + t.c] = from_acc<T>((d - m1) * k + sh);
  }
}

template <typename T>
__global__ void __launch_bounds__(kTX * kTY) bwd_nhwc_partial(Inputs<T> in, GradInputs<T> g,
                                                              typename Acc<T>::type* part) {
  using A = typename Acc<T>::type;
  const Tile t(in.C, in.L, in.chunk, in.n0);
  A sg = 0, sgxc = 0;
  if (t.c < in.C) {
    const A nwc = in.nw_of(t.c), bc = in.bias_of(t.c), mu = g.mean[t.n * in.C + t.c];
    for (int64_t p = t.p0 + threadIdx.y; p < t.p1; p += kTY) {
      const int64_t q = t.n * in.L + p;
      const A gv = to_acc(g.gy[q * in.C + t.c]);
      const A a = act_rt<0>(in.act, in.z_at(q * in.C + t.c, q, nwc, bc), in.alpha);
      sg += gv;
      sgxc += gv * (a - mu);
    }
  }
  tile_store(sg, sgxc, part, t, in.C);
}

// Per (n, c): sum(gy), sum(gy * xhat) and the coefficients coef = [A | B/std | D].
template <typename T>
__global__ void bwd_nhwc_finish(Inputs<T> in, GradInputs<T> g, int64_t chunks,
                                const typename Acc<T>::type* part, typename Acc<T>::type* coef,
                                GradOutputs<T> out) {
  using A = typename Acc<T>::type;
  const int64_t r = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x, NC = in.N * in.C;
  if (r >= NC) return;
  const int64_t n = r / in.C, c = r % in.C;
  A sg = 0, sgxc = 0;
  for (int64_t q = 0; q < chunks; ++q) {
    sg += part[(n * chunks + q) * 2 * in.C + c];
    sgxc += part[(n * chunks + q) * 2 * in.C + in.C + c];
  }
  const A rstd = A(1) / g.std[r], sgx = sgxc * rstd;
  const RowGradCoefs<A> k = row_grad_coefs(rstd, in.sigma_of(r), sg, sgx, g.gm_of(r), g.gs_of(r),
                                           static_cast<A>(in.L));
  coef[r] = k.A;
  coef[NC + r] = k.B * rstd;
  coef[2 * NC + r] = k.D;
  out.sg[r] = sg;
  out.sgx[r] = sgx;
}

template <typename T>
__global__ void __launch_bounds__(kTX * kTY) bwd_nhwc_apply(Inputs<T> in, GradInputs<T> g,
                                                            const typename Acc<T>::type* coef,
                                                            typename Acc<T>::type* part, GradOutputs<T> out) {
  using A = typename Acc<T>::type;
  const Tile t(in.C, in.L, in.chunk, in.n0);
  A sz = 0, szn = 0;
  if (t.c < in.C) {
    const int64_t NC = in.N * in.C, r = t.n * in.C + t.c;
    const A nwc = in.nw_of(t.c), bc = in.bias_of(t.c), mu = g.mean[r];
    const A kA = coef[r], kB = coef[NC + r], kD = coef[2 * NC + r];
    for (int64_t p = t.p0 + threadIdx.y; p < t.p1; p += kTY) {
      const int64_t q = t.n * in.L + p, i = q * in.C + t.c;
      const A z = in.z_at(i, q, nwc, bc);
      const A da = kA * to_acc(g.gy[i]) + kB * (act_rt<0>(in.act, z, in.alpha) - mu) + kD;
      const A d1 = act_rt<1>(in.act, z, in.alpha);
    const A d = in.act == kRelu ? chain_d1<kRelu>(d1, da) : d1 * da;  // relu selects, as on the CPU
      out.dz[i] = from_acc<T>(d);
      sz += d;
      if (in.noise) szn += d * to_acc(in.noise[q]);
    }
  }
  tile_store(sz, szn, part, t, in.C);
}

template <typename T>
__global__ void bwd_nhwc_sums(Inputs<T> in, int64_t chunks, const typename Acc<T>::type* part,
                              GradOutputs<T> out) {
  using A = typename Acc<T>::type;
  const int64_t r = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (r >= in.N * in.C) return;
  const int64_t n = r / in.C, c = r % in.C;
  A sz = 0, szn = 0;
  for (int64_t q = 0; q < chunks; ++q) {
    sz += part[(n * chunks + q) * 2 * in.C + c];
    szn += part[(n * chunks + q) * 2 * in.C + in.C + c];
  }
  out.sz[r] = sz;
  out.szn[r] = szn;
}

// --- launch -------------------------------------------------------------------------------

// The channels_last tile kernels run over slabs of at most kMaxGridYZ samples (gridDim.z),
// each launch with its first sample in Inputs::n0.
dim3 tile_grid(const AdainCudaArgs& a, int64_t samples) {
  return dim3(static_cast<unsigned>((a.C + kTX - 1) / kTX), static_cast<unsigned>(chunks_of(a.L)),
              static_cast<unsigned>(samples));
}

// Calls launch(in_with_r0, blocks) for each slab of at most kMaxGridX rows of an NCHW launch.
template <typename T, typename Launch>
void for_row_slabs(const AdainCudaArgs& a, const Inputs<T>& in, Launch&& launch) {
  const int64_t NC = a.N * a.C;
  for (int64_t r0 = 0; r0 < NC; r0 += kMaxGridX) {
    Inputs<T> slab = in;
    slab.r0 = r0;
    launch(slab, static_cast<unsigned>(NC - r0 < kMaxGridX ? NC - r0 : kMaxGridX));
  }
}

// Calls launch(in_with_n0, grid) for each slab of at most kMaxGridYZ samples.
template <typename T, typename Launch>
void for_sample_slabs(const AdainCudaArgs& a, const Inputs<T>& in, Launch&& launch) {
  for (int64_t n0 = 0; n0 < a.N; n0 += kMaxGridYZ) {
    Inputs<T> slab = in;
    slab.n0 = n0;
    launch(slab, tile_grid(a, a.N - n0 < kMaxGridYZ ? a.N - n0 : kMaxGridYZ));
  }
}

int row_threads(int64_t L) {
  // A warp per 32 values up to a full block: short planes do not idle most of a block.
  const int64_t warps = (L + 31) / 32;
  return static_cast<int>(32 * (warps < kRowThreads / 32 ? (warps > 0 ? warps : 1) : kRowThreads / 32));
}

template <typename T>
cudaError_t forward_typed(const AdainCudaArgs& a, void* y, void* mean, void* std, void* ws, cudaStream_t s) {
  using A = typename Acc<T>::type;
  const Inputs<T> in = make_inputs<T>(a);
  const int64_t NC = a.N * a.C;
  if (!a.channels_last) {
    for_row_slabs(a, in, [&](const Inputs<T>& slab, unsigned blocks) {
      fwd_rows<T><<<blocks, row_threads(a.L), 0, s>>>(slab, static_cast<T*>(y), static_cast<A*>(mean),
                                                      static_cast<A*>(std));
    });
    return cudaGetLastError();
  }
  const int64_t chunks = chunks_of(a.L);
  A* part = static_cast<A*>(ws);
  A* coef = part + 2 * a.N * chunks * a.C;
  const dim3 block(kTX, kTY);
  for_sample_slabs(a, in, [&](const Inputs<T>& slab, dim3 grid) { fwd_nhwc_partial<T><<<grid, block, 0, s>>>(slab, part); });
  fwd_nhwc_finish<T><<<static_cast<unsigned>((NC + 255) / 256), 256, 0, s>>>(in, chunks, part, coef,
                                                                              static_cast<A*>(mean), static_cast<A*>(std));
  for_sample_slabs(a, in, [&](const Inputs<T>& slab, dim3 grid) {
    fwd_nhwc_apply<T><<<grid, block, 0, s>>>(slab, coef, static_cast<T*>(y));
  });
  return cudaGetLastError();
}

template <typename T>
cudaError_t backward_typed(const AdainCudaArgs& a, const void* gy, const void* gmean, const void* gstd,
                           const void* mean, const void* std, void* dz, void* sg, void* sgx, void* sz,
                           void* szn, void* ws, cudaStream_t s) {
  using A = typename Acc<T>::type;
  const Inputs<T> in = make_inputs<T>(a);
  const GradInputs<T> g{static_cast<const T*>(gy), static_cast<const A*>(gmean), static_cast<const A*>(gstd),
                        static_cast<const A*>(mean), static_cast<const A*>(std)};
  const GradOutputs<T> out{static_cast<T*>(dz), static_cast<A*>(sg), static_cast<A*>(sgx), static_cast<A*>(sz),
                           static_cast<A*>(szn)};
  const int64_t NC = a.N * a.C;
  if (!a.channels_last) {
    for_row_slabs(a, in, [&](const Inputs<T>& slab, unsigned blocks) {
      bwd_rows<T><<<blocks, row_threads(a.L), 0, s>>>(slab, g, out);
    });
    return cudaGetLastError();
  }
  const int64_t chunks = chunks_of(a.L);
  A* part = static_cast<A*>(ws);
  A* coef = part + 2 * a.N * chunks * a.C;
  const dim3 block(kTX, kTY);
  const unsigned rows_blocks = static_cast<unsigned>((NC + 255) / 256);
  for_sample_slabs(a, in, [&](const Inputs<T>& slab, dim3 grid) { bwd_nhwc_partial<T><<<grid, block, 0, s>>>(slab, g, part); });
  bwd_nhwc_finish<T><<<rows_blocks, 256, 0, s>>>(in, g, chunks, part, coef, out);
  for_sample_slabs(a, in, [&](const Inputs<T>& slab, dim3 grid) {
    bwd_nhwc_apply<T><<<grid, block, 0, s>>>(slab, g, coef, part, out);
  });
  bwd_nhwc_sums<T><<<rows_blocks, 256, 0, s>>>(in, chunks, part, out);
  return cudaGetLastError();
}

}  // namespace

size_t adain_cuda_workspace_bytes(const AdainCudaArgs& a, bool backward) {
  if (!a.channels_last) return 0;
  const size_t acc = a.dtype == kFloat64 ? sizeof(double) : sizeof(float);
  return acc * static_cast<size_t>(2 * a.N * chunks_of(a.L) * a.C + 3 * a.N * a.C);
}

cudaError_t adain_forward_cuda_launch(const AdainCudaArgs& a, void* y, void* mean, void* std,
                                      void* workspace, cudaStream_t stream) {
  if (a.N * a.C == 0 || a.L == 0) return cudaSuccess;
  return dispatch_dtype(a.dtype, [&](auto tag) {
    return forward_typed<decltype(tag)>(a, y, mean, std, workspace, stream);
  });
}

cudaError_t adain_backward_cuda_launch(const AdainCudaArgs& a, const void* gy, const void* gmean,
                                       const void* gstd, const void* mean, const void* std, void* dz,
                                       void* sum_g, void* sum_gxhat, void* sum_dz, void* sum_dz_noise,
                                       void* workspace, cudaStream_t stream) {
  if (a.N * a.C == 0 || a.L == 0) return cudaSuccess;
  return dispatch_dtype(a.dtype, [&](auto tag) {
    return backward_typed<decltype(tag)>(a, gy, gmean, gstd, mean, std, dz, sum_g, sum_gxhat, sum_dz,
                                         sum_dz_noise, workspace, stream);
  });
}

}  // namespace alae_fast
