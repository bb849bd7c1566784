#include "core/datasets.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "core/status.h"

namespace nasforge {

bool IsFileDataset(const std::string& dataset) {
  return dataset == "idx" || dataset == "cifar" || dataset == "npy";
}

absl::Status ValidateDataPath(const std::string& path, absl::string_view field) {
  if (path.empty()) {
    return FieldError(field,
                      "is required for idx, cifar and npy data (a directory under the "
                      "workers' --data-root)");
  }
  if (path.size() > 256) return FieldError(field, "longer than 256 characters");
  if (path.front() == '/') {
    return FieldError(field, absl::StrCat("'", path,
                                          "' must be relative to the workers' "
                                          "--data-root"));
  }
  for (absl::string_view part : absl::StrSplit(path, '/')) {
    if (part == "..") return FieldError(field, absl::StrCat("'", path, "' may not contain '..'"));
  }
  for (char ch : path) {
    if (static_cast<unsigned char>(ch) < 0x20) {
      return FieldError(field, "has a control character");
    }
  }
  return absl::OkStatus();
}

}  // namespace nasforge
