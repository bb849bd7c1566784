#include "core/compression.h"

#include <set>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "core/status.h"

namespace nasforge {

std::string CompressionKind(const v1::CompressionRecipe& recipe) {
  switch (recipe.kind_case()) {
    case v1::CompressionRecipe::kInt8:
      return "int8";
    case v1::CompressionRecipe::KIND_NOT_SET:
      break;
  }
  return "";
}

void ApplyCompressionDefaults(v1::Compression* compression) {
  for (auto& r : *compression->mutable_recipes()) {
    if (r.name().empty()) r.set_name(CompressionKind(r));
    if (r.has_int8()) {
      auto* q = r.mutable_int8();
      if (q->calibration_batches() == 0) q->set_calibration_batches(8);
      if (q->tolerance() == 0) q->set_tolerance(1.0);
    }
  }
}

absl::Status ValidateCompression(const v1::Compression& compression, absl::string_view dataset,
                                 absl::string_view path) {
  if (compression.recipes_size() == 0) return absl::OkStatus();
  const std::string recipes = absl::StrCat(path, ".recipes");
  if (compression.recipes_size() > 8) {
    return FieldError(recipes, absl::StrCat(compression.recipes_size(), " recipes; at most 8"));
  }
  if (dataset == "tabular" || dataset == "external") {
    return FieldError(recipes, absl::StrCat("dataset ", dataset,
                                            " keeps no trained weights to compress; compression "
                                            "needs a LibTorch worker's datasets"));
  }
  std::set<std::string> names;
  for (int i = 0; i < compression.recipes_size(); ++i) {
    const auto& r = compression.recipes(i);
    const std::string at = absl::StrCat(recipes, "[", i, "]");
    if (r.kind_case() == v1::CompressionRecipe::KIND_NOT_SET) {
      return FieldError(at, "names no kind; one of: int8");
    }
    const std::string& name = r.name();
    bool ok = !name.empty() && name.size() <= 32;
    for (char c : name) {
      ok = ok && (absl::ascii_islower(c) || absl::ascii_isdigit(c) || c == '_' || c == '-');
    }
    if (!ok) {
      return FieldError(absl::StrCat(at, ".name"),
                        absl::StrCat("'", name, "' must be 1-32 characters of [a-z0-9_-]"));
    }
    if (!names.insert(name).second) {
      return FieldError(absl::StrCat(at, ".name"),
                        absl::StrCat("'", name, "' is used by an earlier recipe"));
    }
    if (r.has_int8()) {
      const auto& q = r.int8();
      if (q.calibration_batches() < 1 || q.calibration_batches() > 256) {
        return FieldError(absl::StrCat(at, ".int8.calibration_batches"),
                          absl::StrCat(q.calibration_batches(), " is not in [1, 256]"));
      }
      if (!(q.tolerance() > 0 && q.tolerance() <= 100)) {
        return FieldError(absl::StrCat(at, ".int8.tolerance"),
                          absl::StrCat(q.tolerance(), " is not in (0, 100] accuracy points"));
      }
    }
  }
  return absl::OkStatus();
}

}  // namespace nasforge
