#include "worker/tabular_trainer.h"

#include <algorithm>
#include <chrono>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/cost.h"
#include "core/search_space.h"
#include "core/status.h"

namespace nasforge {
namespace {

class TabularTrainer final : public Trainer {
 public:
  explicit TabularTrainer(TabularOracle oracle) : oracle_(std::move(oracle)) {}

  std::vector<std::string> Datasets() const override { return {"tabular"}; }

  absl::StatusOr<TrainResult> Train(const TrainRequest& req,
                                    const std::function<Verdict(const EpochReport&)>& on_epoch,
                                    const std::atomic<bool>& abort) override {
    NF_RETURN_IF_ERROR(ValidateArchitecture(req.architecture, "architecture"));
    if (req.training.dataset() != "tabular") {
      return absl::FailedPreconditionError(absl::StrCat(
          "this worker answers jobs with training.dataset 'tabular' from a table; the job's "
          "data set is '",
          req.training.dataset(), "': run a --backend torch worker for it"));
    }
    NF_ASSIGN_OR_RETURN(size_t row, oracle_.Find(req.architecture));
    std::mt19937_64 rng(req.seed);
    const double fitness = oracle_.SampleFitness(row, rng);
    const auto start = std::chrono::steady_clock::now();
    const auto until = start + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                                   std::chrono::duration<double>(oracle_.options().trial_seconds));
    while (!abort.load() && std::chrono::steady_clock::now() < until) {
      const std::chrono::steady_clock::duration left = until - std::chrono::steady_clock::now();
      std::this_thread::sleep_for(
          std::min<std::chrono::steady_clock::duration>(std::chrono::milliseconds(20), left));
    }
    if (abort.load()) return absl::AbortedError("aborted");
    EpochReport r;
    r.epoch = std::max(1, req.epochs);
    r.validation_accuracy = fitness;
    r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (on_epoch(r) == Verdict::kAbort) return absl::AbortedError("aborted by the controller");
    TrainResult out;
    const auto& o = oracle_.options();
    out.metrics["accuracy"] = fitness;
    out.metrics[o.fitness_column] = fitness;
    for (size_t i = 0; i < o.report_columns.size(); ++i) {
      out.metrics[o.report_columns[i]] = oracle_.Report(row, i);
    }
    ArchCost c = ComputeCost(req.architecture);
    out.metrics["macs"] = static_cast<double>(c.macs);
    out.metrics["params"] = static_cast<double>(c.params);
    out.metrics["train_seconds"] = 0;
    out.metrics["epochs"] = r.epoch;
    return out;
  }

 private:
  TabularOracle oracle_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Trainer>> NewTabularTrainer(const TabularOptions& options) {
  NF_ASSIGN_OR_RETURN(TabularOracle oracle, TabularOracle::Load(options));
  return std::unique_ptr<Trainer>(std::make_unique<TabularTrainer>(std::move(oracle)));
}

}  // namespace nasforge
