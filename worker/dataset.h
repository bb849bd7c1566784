// Image classification data in memory, without torch: the IDX reader (Fashion-MNIST / MNIST,
// gzipped or plain) and a small synthetic set for tests.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace nasforge {

struct ImageSet {
  int count = 0;
  int channels = 1;
  int height = 0;
  int width = 0;
  int num_classes = 0;
  std::vector<uint8_t> pixels;  // count * channels * height * width, row-major
  std::vector<uint8_t> labels;  // count
};

// Reads an IDX image file and its label file (".gz" read through zlib, else plain).
// Errors name the file and what is wrong with it.
absl::StatusOr<ImageSet> ReadIdx(const std::string& images_path, const std::string& labels_path);

// Finds <dir>/{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz] and reads the split
// ("train" or "test").
absl::StatusOr<ImageSet> ReadIdxSplit(const std::string& dir, const std::string& split);

// A deterministic synthetic set: each class is a bright rectangle at its own position plus noise.
// Learnable in one epoch by any CNN; for tests of the training loop without the real data.
ImageSet MakeSynthetic(int count, int size, int num_classes, uint64_t seed);

// A seeded split of [0, n) into disjoint train and validation index lists.
// train_count 0 means "all the rest".
void SplitIndices(int n, int train_count, int validation_count, uint64_t seed,
                  std::vector<int>* train, std::vector<int>* validation);

}  // namespace nasforge
