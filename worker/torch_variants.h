// Compressed variants of a trained candidate, made by the LibTorch trainer (issue #30): the
// parent's weights loaded, the compression applied (worker/torch_compress.h), the variant
// evaluated on the parent's validation split and test set. Internal to the worker's torch
// translation units.
#pragma once

#include <torch/torch.h>

#include "absl/status/statusor.h"
#include "worker/torch_data.h"
#include "worker/trainer.h"

namespace nasforge {

// int8 post-training quantization (QuantizeRequest, QuantizeResult in trainer.h) on `data`.
// On the CPU, also the folded fp32 network's and the int8 engine's latency (`budget`).
absl::StatusOr<QuantizeResult> QuantizeTrained(const QuantizeRequest& req, const TrainingData& data,
                                               torch::Device device, const LatencyBudget& budget);

// Structured pruning's channel surgery (PruneRequest, PruneResult in trainer.h) on `data`.
absl::StatusOr<PruneResult> PruneTrained(const PruneRequest& req, const TrainingData& data,
                                         torch::Device device);

}  // namespace nasforge
