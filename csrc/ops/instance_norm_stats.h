// instance_norm_stats: the adain engine (csrc/ops/adain.h) with a linear activation and no
// noise, bias or style, returning the statistics as well as the normalised tensor.
#pragma once

#include "adain.h"

namespace alae_fast {

// The adain plan of instance_norm_stats(x, eps); op names the op in messages.
AdainPlan plan_instance_norm_stats(std::string_view op, const at::Tensor& x, double eps);

}  // namespace alae_fast
