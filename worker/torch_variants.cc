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
#include "worker/torch_models.h"

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

torch::Tensor Indices(const std::vector<int>& v, torch::Device device) {
  return torch::from_blob(const_cast<int*>(v.data()), {static_cast<int64_t>(v.size())},
                          torch::kInt32)
      .to(torch::kInt64)
      .to(device);
}

}  // namespace

absl::StatusOr<QuantizeResult> QuantizeTrained(const QuantizeRequest& req, const TrainingData& data,
                                               torch::Device device) {
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

  // The parent's split: the same function and seed as its training.
  std::vector<int> train_idx, val_idx;
  NF_RETURN_IF_ERROR(SplitTraining(t, static_cast<int>(data.train.x.size(0)), req.split_seed,
                                   &train_idx, &val_idx));
  const torch::Tensor va = Indices(val_idx, device), tr = Indices(train_idx, device);
  const torch::Tensor val_x = data.train.x.index_select(0, va),
                      val_y = data.train.y.index_select(0, va);
  torch::Tensor test_x = data.test.x, test_y = data.test.y;
  if (test_x.defined() && t.test_examples() > 0 && t.test_examples() < test_x.size(0)) {
    test_x = test_x.slice(0, 0, t.test_examples());
    test_y = test_y.slice(0, 0, t.test_examples());
  }

  QuantizeResult r;
  auto& m = r.metrics;
  const torch::Tensor probe = FitResolution(val_x.slice(0, 0, 16), size);
  NF_ASSIGN_OR_RETURN(const int folded, FoldBatchNorms(*net, probe));
  m["folded_batchnorms"] = folded;
  m["fp32_accuracy"] = Accuracy(*net, val_x, val_y, size);
  if (test_x.defined()) m["fp32_test_accuracy"] = Accuracy(*net, test_x, test_y, size);

  // Calibration: batches of the training split in a seeded order (never the validation split).
  const int64_t batch = std::max<int64_t>(1, t.batch_size() > 0 ? t.batch_size() : 128);
  torch::manual_seed(req.seed);
  const torch::Tensor order = tr.index_select(
      0, torch::randperm(tr.size(0), torch::TensorOptions().dtype(torch::kInt64).device(device)));
  std::vector<torch::Tensor> calibration;
  for (int64_t i = 0;
       i < order.size(0) && static_cast<int>(calibration.size()) < req.calibration_batches;
       i += batch) {
    const torch::Tensor idx = order.slice(0, i, std::min(i + batch, order.size(0)));
    calibration.push_back(FitResolution(data.train.x.index_select(0, idx), size));
  }
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
  return r;
}

}  // namespace nasforge
