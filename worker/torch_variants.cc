#include "worker/torch_variants.h"

#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/search_space.h"
#include "core/status.h"
#include "worker/dataset.h"
#include "worker/torch_compress.h"
#include "worker/torch_export.h"
#include "worker/torch_latency.h"
#include "worker/torch_models.h"
#include "worker/torch_prune.h"

namespace nasforge {
namespace {

// Top-1 accuracy of `net` in eval mode, fp32, in chunks.
double Accuracy(NetImpl& net, const torch::Tensor& x, const torch::Tensor& y, int64_t size) {
  torch::NoGradGuard ng;
  net.eval();
  constexpr int64_t kChunk = 512;
  int64_t correct = 0;
  for (int64_t i = 0; i < x.size(0); i += kChunk) {
    const int64_t e = std::min<int64_t>(i + kChunk, x.size(0));
    auto pred = net.forward(FitResolution(x.slice(0, i, e), size)).argmax(1);
    correct += pred.eq(y.slice(0, i, e)).sum().item<int64_t>();
  }
  return x.size(0) == 0 ? 0.0 : static_cast<double>(correct) / x.size(0);
}

// Batches pruning re-estimates BatchNorm statistics on.
constexpr int kRecalibrationBatches = 16;

// Up to `count` batches (the job's batch size) of the training split `train_idx`, in an order
// drawn from `seed`, at the network's input resolution `size`.
std::vector<torch::Tensor> TrainingBatches(const TrainingData& data, const torch::Tensor& train_idx,
                                           const v1::Training& t, uint64_t seed, int count,
                                           int64_t size) {
  const int64_t batch = std::max<int64_t>(1, t.batch_size() > 0 ? t.batch_size() : 128);
  torch::manual_seed(seed);
  const torch::Tensor order = train_idx.index_select(
      0, torch::randperm(train_idx.size(0),
                         torch::TensorOptions().dtype(torch::kInt64).device(train_idx.device())));
  std::vector<torch::Tensor> out;
  for (int64_t i = 0; i < order.size(0) && static_cast<int>(out.size()) < count; i += batch) {
    const torch::Tensor idx = order.slice(0, i, std::min(i + batch, order.size(0)));
    out.push_back(FitResolution(data.train.x.index_select(0, idx), size));
  }
  return out;
}

}  // namespace

absl::StatusOr<PruneResult> PruneTrained(const PruneRequest& req, const TrainingData& data,
                                         torch::Device device) {
  NF_RETURN_IF_ERROR(ValidateArchitecture(req.parent_architecture, "parent_architecture"));
  NF_RETURN_IF_ERROR(ValidateArchitecture(req.architecture, "architecture"));
  const InputShape in = ArchInputShape(req.architecture);
  const int64_t size = in.flat ? 0 : in.height;
  NF_ASSIGN_OR_RETURN(std::shared_ptr<NetImpl> parent, BuildNet(req.parent_architecture));
  parent->to(device);
  NF_RETURN_IF_ERROR(LoadWeights(*parent, req.weights));
  NF_ASSIGN_OR_RETURN(std::shared_ptr<NetImpl> child, BuildNet(req.architecture));
  child->to(device);
  NF_ASSIGN_OR_RETURN(const std::vector<ChannelGroup> groups,
                      ChannelGroups(req.parent_architecture, *parent));
  NF_ASSIGN_OR_RETURN(const std::vector<GroupCut> cuts, CopyPrunedWeights(*parent, *child, groups));
  NF_ASSIGN_OR_RETURN(const SplitTensors e,
                      SplitTensorsOf(req.training, data, req.split_seed, device));

  PruneResult r;
  auto& m = r.metrics;
  m["parent_accuracy"] = Accuracy(*parent, e.val_x, e.val_y, size);
  m["cut_accuracy"] = Accuracy(*child, e.val_x, e.val_y, size);
  // The norms re-estimated on batches of the training split (never the validation split).
  m["recalibrated_norms"] = RecalibrateBatchNorms(
      *child,
      TrainingBatches(data, e.train_idx, req.training, req.seed, kRecalibrationBatches, size));
  m["pruned_accuracy"] = Accuracy(*child, e.val_x, e.val_y, size);
  int64_t kept = 0, of = 0;
  for (const GroupCut& c : cuts) {
    kept += c.kept;
    of += c.of;
  }
  m["channels_kept_fraction"] = of == 0 ? 1.0 : static_cast<double>(kept) / of;
  m["channel_groups"] = static_cast<double>(cuts.size());
  m["size_bytes"] = static_cast<double>(DeployedFloatBytes(*child));
  m["parent_size_bytes"] = static_cast<double>(DeployedFloatBytes(*parent));
  NF_ASSIGN_OR_RETURN(ExportedWeights w, ExportWeights(*child, req.architecture, /*seed=*/0));
  r.weights = std::move(w.weights);
  return r;
}

absl::StatusOr<QuantizeResult> QuantizeTrained(const QuantizeRequest& req, const TrainingData& data,
                                               torch::Device device, const LatencyBudget& budget) {
  NF_RETURN_IF_ERROR(ValidateArchitecture(req.architecture, "architecture"));
  if (req.calibration_batches < 1) {
    return absl::InvalidArgumentError("calibration_batches: must be >= 1");
  }
  const v1::Training& t = req.training;
  const InputShape in = ArchInputShape(req.architecture);
  const int64_t size = in.flat ? 0 : in.height;
  NF_ASSIGN_OR_RETURN(std::shared_ptr<NetImpl> net, BuildNet(req.architecture));
  net->to(device);
  NF_RETURN_IF_ERROR(LoadWeights(*net, req.weights));

  NF_ASSIGN_OR_RETURN(const SplitTensors e, SplitTensorsOf(t, data, req.split_seed, device));
  const torch::Tensor &val_x = e.val_x, &val_y = e.val_y, &test_x = e.test_x, &test_y = e.test_y,
                      &tr = e.train_idx;

  QuantizeResult r;
  auto& m = r.metrics;
  const torch::Tensor probe = FitResolution(val_x.slice(0, 0, 16), size);
  NF_ASSIGN_OR_RETURN(const int folded, FoldBatchNorms(*net, probe));
  m["folded_batchnorms"] = folded;
  m["fp32_accuracy"] = Accuracy(*net, val_x, val_y, size);
  m["parent_accuracy"] = m["fp32_accuracy"];  // the column every variant kind fills
  if (test_x.defined()) m["fp32_test_accuracy"] = Accuracy(*net, test_x, test_y, size);
  // The int8 engine runs on the CPU: there, the folded fp32 network's latency first, with the
  // same timer as every candidate's (batch 1, this worker's threads).
  const std::vector<std::string> engines =
      device.is_cpu() ? Int8Engines() : std::vector<std::string>{};
  if (!engines.empty()) {
    NF_ASSIGN_OR_RETURN(const LatencyStats fp32,
                        MeasureLatency(*net, req.architecture, device, LatencySpec{}, budget));
    m["fp32_latency_ms"] = fp32.p50_ms;
  }

  // Calibration: batches of the training split in a seeded order (never the validation split).
  const std::vector<torch::Tensor> calibration =
      TrainingBatches(data, tr, t, req.seed, req.calibration_batches, size);
  NF_ASSIGN_OR_RETURN(const QuantizationResult q, QuantizeInt8(*net, calibration));
  if (!q.unobserved.empty()) {
    return absl::InternalError(
        absl::StrCat("int8: ", q.unobserved.size(),
                     " layers saw no calibration input (first: ", q.unobserved.front(), ")"));
  }
  m["accuracy"] = Accuracy(*net, val_x, val_y, size);
  if (test_x.defined()) m["test_accuracy"] = Accuracy(*net, test_x, test_y, size);
  m["size_bytes"] = static_cast<double>(q.int8_bytes);
  m["fp32_size_bytes"] = static_cast<double>(q.fp32_bytes);
  m["int8_layers"] = q.layers;
  if (!engines.empty()) {
    // The same network on the real int8 engine: its accuracy (the twin's, up to the rounding of
    // each layer's requantized output) and its latency, the variant's latency_ms.
    NF_ASSIGN_OR_RETURN(const int packed, PackInt8Engine(*net, engines.front()));
    m["int8_engine_layers"] = packed;
    m["int8_engine_accuracy"] = Accuracy(*net, val_x, val_y, size);
    NF_ASSIGN_OR_RETURN(const LatencyStats int8,
                        MeasureLatency(*net, req.architecture, device, LatencySpec{}, budget));
    AddLatencyMetrics(int8, &m);
    r.engine = engines.front();
  }
  return r;
}

}  // namespace nasforge
