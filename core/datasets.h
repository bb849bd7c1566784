// The training data kinds a job may name that are files of the user's (Training.dataset idx,
// cifar, npy, read from Training.data_path under each worker's --data-root): shared by the
// controller's spec checks and the worker, which checks the path again before it reads.
#pragma once

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace nasforge {

// Training.dataset names files of the user's (idx, cifar, npy) read from Training.data_path.
bool IsFileDataset(const std::string& dataset);

// A data path: relative (to the workers' --data-root), no "..", no control characters.
// INVALID_ARGUMENT naming `field`.
absl::Status ValidateDataPath(const std::string& path, absl::string_view field);

}  // namespace nasforge
