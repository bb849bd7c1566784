// The tabular backend: answers trials from a benchmark table keyed by the NAS-Bench-201 arch
// string instead of training (`nasforge-worker --backend tabular`). Column names come from the
// flags; with a seeds column each trial reports one seed's value (chosen by the trial's seed),
// like a real noisy run. No LibTorch.
#pragma once

#include <memory>

#include "absl/status/statusor.h"
#include "core/tabular.h"
#include "worker/trainer.h"

namespace nasforge {

// Metrics reported: "accuracy" (the fitness value), the fitness column and every report column
// under their own names, macs and params (analytic), train_seconds 0.
absl::StatusOr<std::unique_ptr<Trainer>> NewTabularTrainer(const TabularOptions& options);

}  // namespace nasforge
