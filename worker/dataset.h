// Image classification data in memory, without torch: readers for the user's files (IDX as
// MNIST / Fashion-MNIST, gzipped or plain; CIFAR-10/100 binary batches; NumPy .npy pairs) and a
// small synthetic set for tests. Errors name the file and what is wrong with it.
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
  std::vector<uint8_t> pixels;  // count * channels * height * width (N, C, H, W), row-major
  std::vector<int32_t> labels;  // count, each in [0, num_classes)
};

// The largest label value accepted (classes 0..kMaxClasses-1).
inline constexpr int kMaxClasses = 100000;

// Reads an IDX image file and its label file (".gz" read through zlib, else plain).
// Errors name the file and what is wrong with it.
absl::StatusOr<ImageSet> ReadIdx(const std::string& images_path, const std::string& labels_path);

// Finds <dir>/{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz] and reads the split
// ("train" or "test"). A 4-d image file (magic 0x00000804, [N, H, W, C]) is read as colour.
absl::StatusOr<ImageSet> ReadIdxSplit(const std::string& dir, const std::string& split);

// CIFAR binary batches in `dir`: CIFAR-10 (data_batch_1..5.bin, test_batch.bin: a label byte and
// 3x32x32 pixels per record) or CIFAR-100 (train.bin, test.bin: coarse and fine label bytes,
// then the pixels; the fine label is used).
absl::StatusOr<ImageSet> ReadCifarSplit(const std::string& dir, const std::string& split);

// NumPy pairs in `dir`: {train,test}_images.npy (uint8, [N, H, W, C] or [N, H, W]) and
// {train,test}_labels.npy (integers, [N]). NOT_FOUND when the split's files are absent.
absl::StatusOr<ImageSet> ReadNpySplit(const std::string& dir, const std::string& split);

// The split of one of the file formats above ("idx", "cifar", "npy").
absl::StatusOr<ImageSet> ReadDatasetSplit(const std::string& format, const std::string& dir,
                                          const std::string& split);

// A deterministic synthetic set: each class is a bright rectangle at its own position plus noise.
// Learnable in one epoch by any CNN; for tests of the training loop without the real data.
ImageSet MakeSynthetic(int count, int size, int num_classes, uint64_t seed);

// A seeded split of [0, n) into disjoint train and validation index lists.
// train_count 0 means "all the rest".
void SplitIndices(int n, int train_count, int validation_count, uint64_t seed,
                  std::vector<int>* train, std::vector<int>* validation);

}  // namespace nasforge
