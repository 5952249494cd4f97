// Launch limits of the CUDA hardware that every kernel file shares.
#pragma once

#include <stdint.h>

namespace alae_fast {

// The most blocks a grid may have along y or z (x allows 2^31 - 1): kernels with more
// samples, groups or chunks than that launch in slabs or loop over the rest.
constexpr int64_t kMaxGridYZ = 65535;
// The most blocks along x; kernels whose x extent may pass it loop over the rest.
constexpr int64_t kMaxGridX = 2147483647;

}  // namespace alae_fast
