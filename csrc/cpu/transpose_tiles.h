// Dense tensors moved between channels_last and contiguous layouts by the CPU kernels that run
// on planes (filtered_lrelu, upfirdn2d): [N, R, K] -> [N, K, R], with R = H*W and K = C one way
// and the reverse the other.
//
// Why not torch's own copy: between the layouts it took 6.7 ms for a 4x512x36x36 float32 tensor
// (10.6 MB), 16x a contiguous copy (0.4 ms); these tiles take 1.3-1.8 ms each way.
#pragma once

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <cstdint>

namespace alae_fast {
namespace cpu_layout {

// dst[n][k][r] = src[n][r][k], in tiles of TR source rows by TK columns (elements moved as
// their bytes: any dtype of that size). Few rows a tile: K is often a power of two (512
// channels), so the rows of a tile fall in few cache sets, and 32 x 32 tiles had evicted each
// other (4.7 ms for the tensor above).
template <typename E>
void transpose_tiles(const E* src, E* dst, int64_t N, int64_t R, int64_t K) {
  constexpr int64_t TR = 8, TK = 64;
  const int64_t tr = (R + TR - 1) / TR, tk = (K + TK - 1) / TK;
  at::parallel_for(0, N * tr * tk, 16, [&](int64_t begin, int64_t end) {
    for (int64_t t = begin; t < end; ++t) {
      const int64_t n = t / (tr * tk), r0 = (t / tk) % tr * TR, k0 = t % tk * TK;
      const int64_t r1 = std::min(R, r0 + TR), k1 = std::min(K, k0 + TK);
      const E* s = src + n * R * K;
      E* d = dst + n * R * K;
      for (int64_t k = k0; k < k1; ++k) {
        for (int64_t r = r0; r < r1; ++r) d[k * R + r] = s[r * K + k];
      }
    }
  });
}

// [N, R, K] -> [N, K, R] of dense tensors' bytes, by element size; `op` names the caller.
inline void transpose_dense(const at::Tensor& src, at::Tensor& dst, int64_t R, int64_t K, const char* op) {
  const int64_t N = src.size(0);
  switch (src.element_size()) {
    case 2: transpose_tiles(static_cast<const uint16_t*>(src.const_data_ptr()), static_cast<uint16_t*>(dst.data_ptr()), N, R, K); break;
    case 4: transpose_tiles(static_cast<const uint32_t*>(src.const_data_ptr()), static_cast<uint32_t*>(dst.data_ptr()), N, R, K); break;
    case 8: transpose_tiles(static_cast<const uint64_t*>(src.const_data_ptr()), static_cast<uint64_t*>(dst.data_ptr()), N, R, K); break;
    default: TORCH_CHECK(false, op, ": no transpose for elements of ", src.element_size(), " bytes");
  }
}

// channels_last and not also contiguous (a tensor with C == 1 or H*W == 1 is both).
inline bool dense_channels_last(const at::Tensor& t) {
  return t.is_contiguous(at::MemoryFormat::ChannelsLast) && !t.is_contiguous();
}

}  // namespace cpu_layout
}  // namespace alae_fast
