// The data a job trains on, as tensors on the training device: the built-in sets (fashion-mnist
// from --data-dir, synthetic) and the user's files (idx, cifar, npy under --data-root), normalised
// per channel (Training.mean/std, else computed from the files; the built-in sets use
// Fashion-MNIST's figures).
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "nasforge/v1/nasforge.pb.h"
#include "worker/trainer.h"

namespace nasforge {

struct Split {
  torch::Tensor x, y;  // images (N, C, H, W) float, labels (N) int64
};

struct TrainingData {
  std::string key;  // DataKey of the Training it was loaded for
  Split train;
  Split test;       // undefined tensors when the data has no test split
  int classes = 0;  // labels are 0..classes-1
};

// Which data a Training names ("dataset:data_path"): equal keys, same data.
std::string DataKey(const v1::Training& t);

// Reads and converts the data `t` names; errors name the field, the file and the problem.
absl::StatusOr<TrainingData> LoadTrainingData(const v1::Training& t, const TorchTrainerOptions& o,
                                              torch::Device device);

// The trainer's train/validation split of `t` over `available` images: validation_examples
// held out (else a tenth), train_examples of the rest (0: all), by `split_seed`. INVALID_ARGUMENT
// naming training.validation_examples when nothing is left to train on.
absl::Status SplitTraining(const v1::Training& t, int available, uint64_t split_seed,
                           std::vector<int>* train, std::vector<int>* validation);

// A job's splits as tensors on `device`: the training split's indices into data.train, the
// validation split's images and labels, and the test set cut to test_examples (undefined when the
// data has none). The same for a trial and for the variants made of it (same split_seed).
struct SplitTensors {
  torch::Tensor train_idx;
  torch::Tensor val_x, val_y, test_x, test_y;
};
absl::StatusOr<SplitTensors> SplitTensorsOf(const v1::Training& t, const TrainingData& data,
                                            uint64_t split_seed, torch::Device device);

// Images resized (bilinear) to the architecture's resolution `size` when it differs from the
// data's; flat inputs and size 0 pass unchanged.
torch::Tensor FitResolution(const torch::Tensor& x, int64_t size);

}  // namespace nasforge
