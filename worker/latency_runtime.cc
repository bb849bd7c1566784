// The worker's latency runtimes (latency_runtime.h).
#include "worker/latency_runtime.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/latency_runtimes.h"

namespace nasforge {
namespace {
void NoBuiltins(NameRegistry<WorkerLatencyRuntime>&) {}
}  // namespace

NameRegistry<WorkerLatencyRuntime>& WorkerLatencyRuntimes() {
  return GlobalRegistry<WorkerLatencyRuntime>("worker latency runtime", &NoBuiltins);
}

std::vector<std::string> LatencyRuntimesOn(const std::string& device) {
  std::vector<std::string> out;
  for (const std::string& name : WorkerLatencyRuntimes().Names()) {
    const WorkerLatencyRuntime* rt = WorkerLatencyRuntimes().Find(name);
    if (LatencyRuntimes().Find(name) != nullptr && (!rt->runs_on || rt->runs_on(device))) {
      out.push_back(name);
    }
  }
  return out;
}

absl::StatusOr<LatencyStats> MeasureWithRuntime(const v1::Architecture& arch,
                                                const v1::HardwareTarget& target,
                                                const MeasureContext& ctx) {
  const std::string name = target.runtime().empty() ? kDefaultLatencyRuntime : target.runtime();
  const WorkerLatencyRuntime* rt = WorkerLatencyRuntimes().Find(name);
  if (rt == nullptr || (rt->runs_on && !rt->runs_on(ctx.device))) {
    return absl::FailedPreconditionError(
        absl::StrCat("runtime ", name, " does not run on this worker (device ", ctx.device,
                     "; it runs: ", absl::StrJoin(LatencyRuntimesOn(ctx.device), ", "), ")"));
  }
  return rt->measure(arch, target, ctx);
}

LatencySpec LatencySpecOf(const v1::HardwareTarget& target) {
  LatencySpec spec;
  spec.batch = target.batch_size() > 0 ? target.batch_size() : 1;
  spec.precision = target.precision().empty() ? "fp32" : target.precision();
  spec.channels_last = LatencyOption(target, "channels_last") == "true";
  return spec;
}

}  // namespace nasforge
