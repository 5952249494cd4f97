// Launchers of the filtered_lrelu CUDA kernels: raw pointers and plain sizes, so
// filtered_lrelu.cu compiles with nvcc without torch headers; filtered_lrelu.cpp (g++) does
// the tensor work.
#pragma once

#include <cuda_runtime_api.h>
#include <stdint.h>

#include "../common/filtered_lrelu_tile.h"

namespace alae_fast {

// One axis of one upfirdn pass (as csrc/cpu/filtered_lrelu_kernels.h's Axis).
struct FlAxisArgs {
  int64_t n_in, n_out, up, down, p0, taps;
};

// One 2-D pass: taps in correlation order on the device, in the accumulation type (float64
// for float64 data, else float32; wx then wy for a separable filter, [ty][tx] for a 2-D one,
// null for the identity), times `scale`.
struct FlPassArgs {
  FlAxisArgs ax, ay;
  const void* taps;
  bool separable;
  double scale;
};

// Pass 1 into an accumulation-type workspace [P][ay.n_out][ax.n_out] (float, or double for
// float64), then the pointwise step: mode 0 leaky ReLU (gain, slope, clamp) writing the codes,
// mode 1 times the derivative read from the codes. `in` is [N, C, ay.n_in, ax.n_in] with
// strides in_st; bias [C] or null.
struct FlStage1Args {
  int dtype;  // DType of in and bias
  const void* in;
  int64_t in_st[4];
  const void* bias;
  int64_t N, C;
  FlPassArgs pass;
  void* work;
  int mode;
  unsigned char* codes;  // [P][state_bytes]
  int64_t state_bytes;
  double gain, slope, clamp;
  bool has_clamp;
};

// Pass 2 from the workspace [P][ay.n_in][ax.n_in] into out [N, C, ay.n_out, ax.n_out] with
// strides out_st.
struct FlStage2Args {
  int dtype;
  const void* work;
  void* out;
  int64_t out_st[4];
  int64_t N, C;
  FlPassArgs pass;
};

// The fused kernel (csrc/common/filtered_lrelu_tile.h): a.plan from fl_choose_tile, a.plan.bytes
// <= 48 KiB; for mode 0 the state zeroed and padded to a multiple of 4 bytes.
cudaError_t filtered_lrelu_fused_launch(const FlFusedArgs& a, cudaStream_t stream);

cudaError_t filtered_lrelu_stage1_launch(const FlStage1Args& a, cudaStream_t stream);
cudaError_t filtered_lrelu_stage2_launch(const FlStage2Args& a, cudaStream_t stream);

}  // namespace alae_fast
