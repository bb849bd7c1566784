// The worker's side of the latency runtimes (core/latency_runtimes.h names them for the
// controller): for each runtime this worker can run, the code that measures a candidate with
// it. A measurement lease names its target; the worker runs the target's runtime from this
// registry. Built-ins: LibTorch eager and LibTorch CUDA graph (RegisterTorchLatencyRuntimes,
// worker/torch_latency.cc: one line each). Declares nothing from LibTorch.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/registry.h"
#include "nasforge/v1/nasforge.pb.h"
#include "worker/latency.h"

namespace nasforge {

// Where and how a trainer measures: its device and latency budget.
struct MeasureContext {
  std::string device = "cpu";  // cpu | cuda | cuda:N
  LatencyBudget budget;
  uint64_t seed = 0;  // the fresh model's weights (latency does not depend on their values)
};

struct WorkerLatencyRuntime {
  std::string name;  // as in core/latency_runtimes.h
  // Whether this runtime runs on `device` here (a CUDA graph needs a GPU).
  std::function<bool(const std::string& device)> runs_on;
  // Measures `arch`, freshly built, at `target`'s setting (batch, precision, options).
  std::function<absl::StatusOr<LatencyStats>(
      const v1::Architecture& arch, const v1::HardwareTarget& target, const MeasureContext& ctx)>
      measure;
};

// The process-wide registry; empty until a trainer registers its runtimes.
NameRegistry<WorkerLatencyRuntime>& WorkerLatencyRuntimes();

// The runtimes this worker offers on `device`: registered here, known to the core table, and
// running on that device. Sorted. What the worker registers with (latency_runtimes).
std::vector<std::string> LatencyRuntimesOn(const std::string& device);

// Measures `arch` at `target` with the target's runtime. FAILED_PRECONDITION naming the
// runtime when this worker has none of that name or it does not run on ctx.device.
absl::StatusOr<LatencyStats> MeasureWithRuntime(const v1::Architecture& arch,
                                                const v1::HardwareTarget& target,
                                                const MeasureContext& ctx);

// The LibTorch runtimes' setting from a target: batch, precision, channels_last option.
LatencySpec LatencySpecOf(const v1::HardwareTarget& target);

}  // namespace nasforge
