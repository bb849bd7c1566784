#include "controller/strategy_driver.h"

#include <chrono>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/log.h"
#include "core/pareto.h"
#include "core/search_space.h"
#include "core/test_hooks.h"

namespace nasforge {
namespace {

std::vector<v1::Constraint> CostBounds(const v1::JobSpec& spec) {
  std::vector<v1::Constraint> out;
  for (const auto& c : spec.constraints()) {
    if (c.metric() == "macs" || c.metric() == "params" || c.metric() == "train_memory_bytes") {
      out.push_back(c);
    }
  }
  return out;
}

}  // namespace

StrategyDriver::StrategyDriver(std::string job_id, const v1::JobSpec& spec,
                               std::unique_ptr<Strategy> strategy, std::set<std::string> seen,
                               ControllerMetrics* metrics)
    : job_id_(std::move(job_id)),
      cost_bounds_(CostBounds(spec)),
      batch_size_(spec.training().batch_size()),
      metrics_(metrics),
      suggest_seconds_(metrics == nullptr ? nullptr
                                          : &metrics->SuggestSeconds(spec.strategy().name().empty()
                                                                         ? "random"
                                                                         : spec.strategy().name())),
      strategy_(std::move(strategy)),
      seen_(std::move(seen)) {}

StrategyDriver::Step StrategyDriver::Next(const std::vector<v1::Trial>& finished,
                                          int max_attempts) {
  TEST_PAUSE_POINT("strategy_driver.next");
  for (const v1::Trial& t : finished) strategy_->Tell(t);
  Step step;
  // Admissible: never seen in this job (same hash), and within the macs/params bounds.
  auto admissible = [&](const v1::Architecture& arch) {
    mu_.AssertHeld();  // called by Ask() below, on this thread
    std::string hash = ArchHash(arch);
    if (seen_.count(hash)) return false;
    ArchCost cost = ComputeCost(arch);
    seen_.insert(hash);
    const int64_t memory = TrainingMemoryBytes(cost, batch_size_);
    MetricMap m{{"macs", static_cast<double>(cost.macs)},
                {"params", static_cast<double>(cost.params)},
                {"train_memory_bytes", static_cast<double>(memory)}};
    if (!MeetsConstraints(m, cost_bounds_)) {
      ++step.rejected_by_cost;
      if (metrics_) metrics_->rejected_by_cost_total.Increment();
      Log(LogLevel::kDebug, "candidate_rejected_by_cost",
          {{"job", job_id_}, {"hash", hash}, {"macs", cost.macs}, {"params", cost.params}});
      return false;
    }
    step.hash = std::move(hash);
    step.cost = cost;
    step.train_memory_bytes = memory;
    return true;
  };
  const auto t0 = std::chrono::steady_clock::now();
  Proposal p = strategy_->Ask(admissible, max_attempts);
  if (suggest_seconds_ != nullptr) {
    suggest_seconds_->Observe(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  step.kind = p.kind;
  step.arch = std::move(p.arch);
  step.reason = std::move(p.reason);
  step.position = strategy_->position();
  return step;
}

absl::StatusOr<StrategyDriver::Step> StrategyDriver::Admit(const v1::Architecture& arch) {
  Step step;
  step.hash = ArchHash(arch);
  if (seen_.count(step.hash)) {
    return absl::AlreadyExistsError(absl::StrCat(
        "architecture: the job already has this candidate (", step.hash.substr(0, 16), ")"));
  }
  step.cost = ComputeCost(arch);
  step.train_memory_bytes = TrainingMemoryBytes(step.cost, batch_size_);
  MetricMap m{{"macs", static_cast<double>(step.cost.macs)},
              {"params", static_cast<double>(step.cost.params)},
              {"train_memory_bytes", static_cast<double>(step.train_memory_bytes)}};
  if (!MeetsConstraints(m, cost_bounds_)) {
    return absl::InvalidArgumentError(absl::StrCat("architecture: macs ", step.cost.macs,
                                                   ", params ", step.cost.params,
                                                   " break the job's cost constraints"));
  }
  seen_.insert(step.hash);
  step.kind = Proposal::Kind::kCandidate;
  step.arch = arch;
  step.position = strategy_->position();
  return step;
}

}  // namespace nasforge
