// The trainer interface: builds a candidate, trains it, measures it. Declares nothing from
// LibTorch; NewTorchTrainer() is the only way in, so the rest of the worker compiles and tests
// without torch headers.
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "nasforge/v1/nasforge.pb.h"

namespace nasforge {

struct TrainRequest {
  v1::Architecture architecture;
  v1::Training training;
  int epochs = 1;
  uint64_t seed = 0;        // initialisation and batch order
  uint64_t split_seed = 0;  // train/validation split
};

struct EpochReport {
  int epoch = 0;
  double validation_accuracy = 0;
  double train_loss = 0;
  double seconds = 0;
  double images_per_second = 0;
  int64_t images = 0;
};

enum class Verdict { kContinue, kStop, kAbort };

struct TrainResult {
  std::map<std::string, double> metrics;  // see v1::Trial.metrics
  bool stopped_early = false;
  double latency_measure_seconds = 0;  // time the latency benchmark took (0: none was run)
};

class Trainer {
 public:
  virtual ~Trainer() = default;
  // Trains `req`. `on_epoch` is called after each epoch's validation; kStop ends training and
  // still measures the model, kAbort ends it without a result (ABORTED). `abort` is polled
  // between batches. Thread-compatible: one Train at a time.
  virtual absl::StatusOr<TrainResult> Train(
      const TrainRequest& req, const std::function<Verdict(const EpochReport&)>& on_epoch,
      const std::atomic<bool>& abort) = 0;
};

struct TorchTrainerOptions {
  std::string data_dir = "/usr/share/datasets/fashion-mnist";
  int threads = 1;  // intra-op threads for training and latency
  int latency_warmup = 10;
  int latency_max_runs = 300;
  double latency_max_seconds = 3.0;
  double latency_target_spread = 0.1;  // stop when IQR / median is below this
};

// Threads are set once per process (torch::set_num_threads). Data sets are loaded lazily and
// cached.
std::unique_ptr<Trainer> NewTorchTrainer(const TorchTrainerOptions& options);

// Builds `arch` in LibTorch and counts parameters (from the module's tensors) and MACs (from
// each conv/linear weight and the output positions seen in a forward pass of a zero batch of
// `batch` inputs). For cross-checking the analytic cost model in tests and tools.
struct BuiltModelCount {
  int64_t params = 0;
  int64_t macs = 0;
  std::vector<int64_t> output_shape;  // of the forward pass: {batch, num_classes}
};
absl::StatusOr<BuiltModelCount> CountBuiltModel(const v1::Architecture& arch, int batch = 1);

}  // namespace nasforge
