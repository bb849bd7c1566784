// The trainer interface: builds a candidate, trains it, measures it. Declares nothing from
// LibTorch; NewTorchTrainer() is the only way in, so the rest of the worker compiles and tests
// without torch headers.
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "nasforge/v1/nasforge.pb.h"
#include "worker/latency.h"
#include "worker/latency_runtime.h"

namespace nasforge {

struct TrainRequest {
  v1::Architecture architecture;
  v1::Training training;
  int epochs = 1;
  uint64_t seed = 0;        // initialisation and batch order
  uint64_t split_seed = 0;  // train/validation split
  // Weights to start from (a pickled state dict of this architecture, e.g. PruneResult.weights)
  // instead of a fresh initialisation; empty: fresh. With epochs 0 the network is evaluated as
  // it is (accuracy on the validation split, no training).
  std::string initial_weights;
  // Knowledge distillation: the loss becomes alpha * T^2 * KL(teacher/T || student/T) +
  // (1 - alpha) * CE (worker/torch_compress.h DistillationLoss; no label smoothing), the
  // teacher's logits computed under no-grad, in eval mode, on each augmented batch. The result's
  // metrics add teacher_accuracy (the teacher as loaded, on the validation split).
  struct Teacher {
    v1::Architecture architecture;
    std::string weights;  // its trained weights (a pickled state dict)
    double alpha = 0.5;
    double temperature = 4;
  };
  std::optional<Teacher> teacher;
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
  // With TorchTrainerOptions.keep_weights: the trained weights and the self-check (see
  // worker/torch_export.h; both are torch.load-able pickles). Empty otherwise.
  std::string weights;
  std::string check;
};

// A compressed variant of a trained candidate (issue #30): int8 post-training quantization.
// The parent's weights (TrainResult.weights) are loaded into `architecture`, BatchNorms folded,
// each conv/linear input's range observed on `calibration_batches` batches of the training
// split, and the int8 twin evaluated on the validation split and the test set.
struct QuantizeRequest {
  v1::Architecture architecture;
  v1::Training training;  // the job's: data, split sizes, batch size
  std::string weights;    // the parent's trained weights (a pickled state dict)
  int calibration_batches = 8;
  uint64_t seed = 0;        // which training batches calibrate
  uint64_t split_seed = 0;  // the parent's train/validation split
};

// metrics: accuracy and test_accuracy of the int8 twin; fp32_accuracy and fp32_test_accuracy
// of the parent as loaded (folded, fp32: the same split, so the difference is quantization's);
// size_bytes (int8 weights, fp32 scales and the rest) and fp32_size_bytes; int8_layers. On a
// CPU with an int8 engine (`engine`: "onednn" on x86), also int8_engine_accuracy and latency_ms
// (p90, p99, spread, runs) of the network on that engine, and fp32_latency_ms of the folded
// fp32 network, batch 1, the same timer: measured, never assumed faster.
struct QuantizeResult {
  std::map<std::string, double> metrics;
  std::string engine;  // "" where none ran (a GPU worker: the twin only)
};

// Structured pruning of a trained candidate (issue #30): the parent's weights loaded into
// `parent_architecture`, copied channel by channel into `architecture` (the same network at
// smaller widths: core/compression.h PrunedArchitecture), keeping in each group of aligned
// channels those whose producing filters have the largest L1 norm (worker/torch_prune.h).
struct PruneRequest {
  v1::Architecture parent_architecture;
  v1::Architecture architecture;
  v1::Training training;  // the job's: data, split sizes, batch size
  std::string weights;    // the parent's trained weights
  uint64_t seed = 0;      // which training batches re-estimate the BatchNorm statistics
  uint64_t split_seed = 0;
};

// weights: the pruned network's, as copied (TrainRequest.initial_weights for its fine-tuning).
// metrics: parent_accuracy (the parent as loaded, validation split), cut_accuracy (the copy as
// cut), pruned_accuracy (the copy with its BatchNorm statistics re-estimated on 16 training
// batches: what fine-tuning starts from), channels_kept_fraction (over every pruned group),
// size_bytes (fp32) and parent_size_bytes.
struct PruneResult {
  std::string weights;
  std::map<std::string, double> metrics;
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
  // Where this trainer measures latency for measurement leases (its device, threads and
  // budget; the target's runtime from worker/latency_runtime.h does the measuring); nullopt:
  // it does not measure, and the worker registers as one that does not.
  virtual std::optional<MeasureContext> Measuring() const { return std::nullopt; }
  // The Training.dataset values this trainer trains, registered with the controller so it is
  // leased only trials of those (RegisterWorkerRequest.datasets); empty: every built-in one.
  virtual std::vector<std::string> Datasets() const { return {}; }
  // The compression kinds it makes variants with (RegisterWorkerRequest.compression).
  virtual std::vector<std::string> CompressionKinds() const { return {}; }
  // int8 post-training quantization of a trained candidate; UNIMPLEMENTED where the trainer has
  // no such engine.
  virtual absl::StatusOr<QuantizeResult> Quantize(const QuantizeRequest& req) {
    return absl::UnimplementedError("this trainer does not quantize");
  }
  // Structured pruning's channel surgery (fine-tuning is a Train from PruneResult.weights);
  // UNIMPLEMENTED where the trainer keeps no weights.
  virtual absl::StatusOr<PruneResult> Prune(const PruneRequest& req) {
    return absl::UnimplementedError("this trainer does not prune");
  }
};

struct TorchTrainerOptions {
  std::string data_dir = "/usr/share/datasets/fashion-mnist";
  // Where jobs' own files live (Training.data_path is relative to it).
  std::string data_root = "/var/lib/nasforge/data";
  int threads = 1;             // intra-op threads for training and latency
  std::string device = "cpu";  // cpu | cuda | cuda:N (a CUDA LibTorch build)
  std::string autocast;        // "" or "bf16": mixed-precision training (CUDA)
  bool channels_last = false;  // NHWC weights and batches (faster convs on tensor cores)
  bool keep_weights = true;    // fill TrainResult.weights/check
  LatencyBudget latency;       // the trained model's own latency benchmark
};

// Threads are set once per process (torch::set_num_threads). Data sets are loaded lazily, kept
// on the device, and cached. INVALID_ARGUMENT / FAILED_PRECONDITION / UNAVAILABLE for a device
// or autocast this build or machine cannot do.
absl::StatusOr<std::unique_ptr<Trainer>> NewTorchTrainer(const TorchTrainerOptions& options);

// Adds the LibTorch latency runtimes (libtorch, libtorch-cuda-graph) to WorkerLatencyRuntimes()
// once; NewTorchTrainer calls it.
void RegisterTorchLatencyRuntimes();

// LibTorch's intra-op threads (and one inter-op thread) for this process; the first call wins
// (LibTorch fixes them once its pools exist).
void SetTorchThreads(int threads);

// The accelerator a device string names ("NVIDIA H200"), "none" for the CPU.
std::string AcceleratorName(const std::string& device);

// Builds `arch` fresh (weights from `seed`; latency does not depend on their values) and
// measures it on `device` (torch_latency.h). For measurement leases and the latency bench.
absl::StatusOr<LatencyStats> MeasureArchitecture(const v1::Architecture& arch,
                                                 const std::string& device, const LatencySpec& spec,
                                                 const LatencyBudget& budget, uint64_t seed = 0);

// Builds `arch` in LibTorch and counts parameters (from the module's tensors) and MACs (from
// each conv/linear weight and the output positions seen in a forward pass of a zero batch of
// `batch` inputs). For cross-checking the analytic cost model in tests and tools.
struct BuiltModelCount {
  int64_t params = 0;
  int64_t macs = 0;
  std::vector<int64_t> output_shape;  // of the forward pass: {batch, num_classes}
};
// A freshly built model exported as a trained one is (TrainResult.weights/check): weights from
// `seed`, BatchNorm running statistics moved by `warm_batches` training-mode passes of random
// batches (so the check covers them). For the export round-trip test and the side-by-side
// benches against PyTorch.
struct ModelFiles {
  std::string weights, check;
};
absl::StatusOr<ModelFiles> ExportFreshModel(const v1::Architecture& arch, uint64_t seed,
                                            int warm_batches = 2);

absl::StatusOr<BuiltModelCount> CountBuiltModel(const v1::Architecture& arch, int batch = 1);

}  // namespace nasforge
