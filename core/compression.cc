#include "core/compression.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "core/cost.h"
#include "core/search_space.h"
#include "core/space_kind.h"
#include "core/status.h"

namespace nasforge {
namespace {

// The built-in kinds whose widths Scale rewrites and whose LibTorch builders the worker's
// channel surgery knows (worker/torch_prune.cc).
bool Prunable(const std::string& kind) {
  return kind == "mbconv" || kind == "resnet" || kind == "convnext" || kind == "nb201" ||
         kind == "mlp";
}

}  // namespace

std::string CompressionKind(const v1::CompressionRecipe& recipe) {
  switch (recipe.kind_case()) {
    case v1::CompressionRecipe::kInt8:
      return "int8";
    case v1::CompressionRecipe::kPrune:
      return "prune";
    case v1::CompressionRecipe::KIND_NOT_SET:
      break;
  }
  return "";
}

bool VariantIsOwnNetwork(const v1::CompressionRecipe& recipe) { return recipe.has_prune(); }

void ApplyCompressionDefaults(v1::Compression* compression, int job_epochs) {
  for (auto& r : *compression->mutable_recipes()) {
    if (r.name().empty()) r.set_name(CompressionKind(r));
    if (r.has_int8()) {
      auto* q = r.mutable_int8();
      if (q->calibration_batches() == 0) q->set_calibration_batches(8);
      if (q->tolerance() == 0) q->set_tolerance(1.0);
    }
    if (r.has_prune()) {
      auto* p = r.mutable_prune();
      if (p->ratio() == 0) p->set_ratio(0.5);
      if (p->epochs() == 0) p->set_epochs(std::max(1, job_epochs / 3));
    }
  }
}

absl::Status ValidateCompression(const v1::JobSpec& spec, absl::string_view path) {
  const v1::Compression& compression = spec.compression();
  const std::string& dataset = spec.training().dataset();
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
      return FieldError(at, "names no kind; one of: int8, prune");
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
    if (r.has_prune()) {
      const auto& p = r.prune();
      if (!(p.ratio() > 0 && p.ratio() <= 0.95)) {
        return FieldError(absl::StrCat(at, ".prune.ratio"),
                          absl::StrCat(p.ratio(), " is not in (0, 0.95]"));
      }
      if (p.epochs() < -1 || p.epochs() > 1000) {
        return FieldError(absl::StrCat(at, ".prune.epochs"),
                          absl::StrCat(p.epochs(), " is not in [1, 1000] (or -1: none)"));
      }
      const std::string kind = KindName(spec.search_space());
      if (spec.has_search_space() && !Prunable(kind)) {
        return FieldError(
            absl::StrCat(at, ".prune"),
            absl::StrCat("search space kind '", kind.empty() ? "none" : kind,
                         "' has no widths pruning can rewrite; prunable kinds: mbconv, resnet, "
                         "convnext, nb201, mlp"));
      }
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<v1::Architecture> PrunedArchitecture(const v1::Architecture& arch_in, double ratio) {
  const v1::Architecture arch = NormalizedArchitecture(arch_in);
  const SpaceKind* kind = KindOf(arch);
  if (kind == nullptr || !Prunable(kind->name())) {
    return absl::FailedPreconditionError(
        absl::StrCat("kind ", KindName(arch),
                     " cannot be pruned (prunable kinds: mbconv, resnet, "
                     "convnext, nb201, mlp)"));
  }
  if (!(ratio > 0 && ratio < 1)) {
    return absl::InvalidArgumentError(absl::StrCat("ratio ", ratio, " is not in (0, 1)"));
  }
  v1::Architecture out = arch;
  const auto same = [](int v) { return v; };
  std::map<int, int> widths;  // each width the kind has, and what it becomes
  kind->Scale(&out, ScaleMaps{same,
                              [ratio, &widths](int w) {
                                const int k =
                                    std::max(1, static_cast<int>(std::lround(w * (1 - ratio))));
                                widths[w] = k;
                                return k;
                              },
                              same});
  out = NormalizedArchitecture(out);
  // The same network, narrower. Where a residual or shortcut depends on two widths being equal
  // (MBConv, ResNet), rounding must not make two different widths equal; and the layers must
  // be the same ones.
  bool same_layers = true;
  if (kind->name() == "mbconv" || kind->name() == "resnet") {
    std::set<int> images;
    for (const auto& [w, k] : widths) same_layers = same_layers && images.insert(k).second;
  }
  const ArchCost a = ComputeCost(arch), b = ComputeCost(out);
  same_layers = same_layers && a.layers.size() == b.layers.size();
  for (size_t i = 0; same_layers && i < a.layers.size(); ++i) {
    same_layers = a.layers[i].name == b.layers[i].name && a.layers[i].kind == b.layers[i].kind;
  }
  if (!same_layers) {
    return absl::FailedPreconditionError(
        absl::StrCat("pruning ", ArchSummary(arch), " at ratio ", ratio,
                     " rounds two different widths to the same one, which changes its residuals or "
                     "shortcuts; choose another ratio"));
  }
  return out;
}

}  // namespace nasforge
