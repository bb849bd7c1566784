// A job's training data as tensors on the training device: read (worker/dataset.cc),
// normalised per channel, labels as int64.
#include "worker/torch_data.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/datasets.h"
#include "core/log.h"
#include "core/status.h"
#include "worker/dataset.h"

namespace nasforge {
namespace {

// Mean and standard deviation of each channel's pixels in [0, 1].
void ChannelStats(const ImageSet& s, std::vector<double>* mean, std::vector<double>* stdev) {
  const size_t plane = static_cast<size_t>(s.height) * s.width;
  std::vector<double> sum(s.channels), sq(s.channels);
  for (size_t n = 0; n < static_cast<size_t>(s.count); ++n) {
    for (int c = 0; c < s.channels; ++c) {
      const uint8_t* p = s.pixels.data() + (n * s.channels + c) * plane;
      uint64_t a = 0, b = 0;
      for (size_t i = 0; i < plane; ++i) {
        a += p[i];
        b += uint64_t{p[i]} * p[i];
      }
      sum[c] += static_cast<double>(a);
      sq[c] += static_cast<double>(b);
    }
  }
  const double count = static_cast<double>(s.count) * plane;
  mean->assign(s.channels, 0);
  stdev->assign(s.channels, 0);
  for (int c = 0; c < s.channels; ++c) {
    const double m = sum[c] / count / 255.0;
    const double v = sq[c] / count / (255.0 * 255.0) - m * m;
    (*mean)[c] = m;
    (*stdev)[c] = std::max(std::sqrt(std::max(v, 0.0)), 1e-3);
  }
}

Split ToTensors(const ImageSet& s, const std::vector<double>& mean,
                const std::vector<double>& stdev, torch::Device device) {
  auto m = torch::tensor(mean, torch::kFloat32).view({1, s.channels, 1, 1});
  auto d = torch::tensor(stdev, torch::kFloat32).view({1, s.channels, 1, 1});
  auto x = torch::from_blob(const_cast<uint8_t*>(s.pixels.data()),
                            {s.count, s.channels, s.height, s.width}, torch::kUInt8)
               .to(torch::kFloat32)
               .div_(255.0)
               .sub_(m)
               .div_(d)
               .to(device);
  auto y = torch::from_blob(const_cast<int32_t*>(s.labels.data()), {s.count}, torch::kInt32)
               .to(torch::kInt64)
               .to(device);
  return {x, y};
}

}  // namespace

std::string DataKey(const v1::Training& t) { return absl::StrCat(t.dataset(), ":", t.data_path()); }

absl::StatusOr<TrainingData> LoadTrainingData(const v1::Training& t, const TorchTrainerOptions& o,
                                              torch::Device device) {
  ImageSet train, test;
  bool has_test = true;
  std::string where = "-";
  if (t.dataset() == "tabular") {
    return absl::FailedPreconditionError(
        "training.dataset 'tabular' is answered by --backend tabular workers, not by training");
  }
  if (t.dataset() == "synthetic") {
    train = MakeSynthetic(8000, 28, 10, 1);
    test = MakeSynthetic(2000, 28, 10, 2);
  } else if (IsFileDataset(t.dataset())) {
    // The job's own files under --data-root (the controller checked the path is relative
    // and has no ".."; checked again here: a worker trusts no job spec with its files).
    NF_RETURN_IF_ERROR(ValidateDataPath(t.data_path(), "training.data_path"));
    where = absl::StrCat(o.data_root, "/", t.data_path());
    auto tr = ReadDatasetSplit(t.dataset(), where, "train");
    if (!tr.ok()) {
      return absl::Status(tr.status().code(),
                          absl::StrCat("training.data_path: ", tr.status().message(),
                                       " (worker --data-root ", o.data_root, ")"));
    }
    train = std::move(*tr);
    auto te = ReadDatasetSplit(t.dataset(), where, "test");
    if (te.ok()) {
      test = std::move(*te);
    } else if (te.status().code() == absl::StatusCode::kNotFound) {
      has_test = false;  // no test split: no test accuracy
    } else {
      return te.status();
    }
    if (has_test && (test.channels != train.channels || test.height != train.height ||
                     test.width != train.width)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "training.data_path: ", where, ": test images are ", test.channels, "x", test.height, "x",
          test.width, ", training images ", train.channels, "x", train.height, "x", train.width));
    }
  } else {
    auto tr = ReadIdxSplit(o.data_dir, "train");
    if (!tr.ok()) return tr.status();
    auto te = ReadIdxSplit(o.data_dir, "test");
    if (!te.ok()) return te.status();
    train = std::move(*tr);
    test = std::move(*te);
    where = o.data_dir;
  }
  // Per-channel normalisation: given, Fashion-MNIST's for the built-in sets, else computed
  // from the training images.
  std::vector<double> mean(t.mean().begin(), t.mean().end());
  std::vector<double> stdev(t.std().begin(), t.std().end());
  if (mean.empty()) {
    if (IsFileDataset(t.dataset())) {
      ChannelStats(train, &mean, &stdev);
    } else {
      mean.assign(train.channels, 0.2860);
      stdev.assign(train.channels, 0.3530);
    }
  }
  if (static_cast<int>(mean.size()) != train.channels) {
    return absl::InvalidArgumentError(absl::StrCat(
        "training.mean: ", mean.size(), " values for images of ", train.channels, " channels"));
  }
  // The whole data set lives on the training device: batches are gathered there, never
  // copied from the host per step.
  TrainingData data;
  data.key = DataKey(t);
  data.train = ToTensors(train, mean, stdev, device);
  data.test = has_test ? ToTensors(test, mean, stdev, device) : Split{};
  data.classes = std::max(train.num_classes, has_test ? test.num_classes : 0);
  Log(LogLevel::kInfo, "data_loaded",
      {{"dataset", t.dataset()},
       {"train", train.count},
       {"test", has_test ? test.count : 0},
       {"shape", absl::StrCat(train.channels, "x", train.height, "x", train.width)},
       {"classes", data.classes},
       {"dir", where}});
  return data;
}

absl::Status SplitTraining(const v1::Training& t, int available, uint64_t split_seed,
                           std::vector<int>* train, std::vector<int>* validation) {
  const int held_out =
      t.validation_examples() > 0 ? t.validation_examples() : std::max(1, available / 10);
  if (held_out >= available) {
    return absl::InvalidArgumentError(absl::StrCat("training.validation_examples: ", held_out,
                                                   " leaves no training images of the ", available,
                                                   " in the data"));
  }
  SplitIndices(available, t.train_examples(), held_out, split_seed, train, validation);
  return absl::OkStatus();
}

absl::StatusOr<SplitTensors> SplitTensorsOf(const v1::Training& t, const TrainingData& data,
                                            uint64_t split_seed, torch::Device device) {
  std::vector<int> train_idx, val_idx;
  NF_RETURN_IF_ERROR(
      SplitTraining(t, static_cast<int>(data.train.x.size(0)), split_seed, &train_idx, &val_idx));
  const auto indices = [device](const std::vector<int>& v) {
    return torch::from_blob(const_cast<int*>(v.data()), {static_cast<int64_t>(v.size())},
                            torch::kInt32)
        .to(torch::kInt64)
        .to(device);
  };
  SplitTensors s;
  const torch::Tensor va = indices(val_idx);
  s.train_idx = indices(train_idx);
  s.val_x = data.train.x.index_select(0, va);
  s.val_y = data.train.y.index_select(0, va);
  s.test_x = data.test.x;
  s.test_y = data.test.y;
  if (s.test_x.defined() && t.test_examples() > 0 && t.test_examples() < s.test_x.size(0)) {
    s.test_x = s.test_x.slice(0, 0, t.test_examples());
    s.test_y = s.test_y.slice(0, 0, t.test_examples());
  }
  return s;
}

torch::Tensor FitResolution(const torch::Tensor& x, int64_t size) {
  if (size <= 0 || x.dim() != 4 || x.size(2) == size) return x;
  return torch::nn::functional::interpolate(x, torch::nn::functional::InterpolateFuncOptions()
                                                   .size(std::vector<int64_t>{size, size})
                                                   .mode(torch::kBilinear)
                                                   .align_corners(false));
}

}  // namespace nasforge
