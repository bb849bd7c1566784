#include "core/compression.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/cost.h"
#include "core/search_space.h"
#include "core/space_kind.h"
#include "core/status.h"

namespace nasforge {
namespace {

// The registered kinds pruning can rewrite ("mbconv, resnet, ..."), for messages.
std::string PrunableKinds() {
  std::vector<std::string> names;
  for (const std::string& n : SpaceKinds().Names()) {
    const SpaceKindEntry* e = SpaceKinds().Find(n);
    if (e != nullptr && e->kind->Prunable()) names.push_back(n);
  }
  return absl::StrJoin(names, ", ");
}

}  // namespace

std::string CompressionKind(const v1::CompressionRecipe& recipe) {
  switch (recipe.kind_case()) {
    case v1::CompressionRecipe::kInt8:
      return "int8";
    case v1::CompressionRecipe::kPrune:
      return "prune";
    case v1::CompressionRecipe::kDistill:
      return "distill";
    case v1::CompressionRecipe::KIND_NOT_SET:
      break;
  }
  return "";
}

bool VariantIsOwnNetwork(const v1::CompressionRecipe& recipe) {
  return recipe.has_prune() || recipe.has_distill();
}

const v1::CompressionRecipe* FindRecipe(const v1::Compression& compression,
                                        const std::string& name) {
  for (const auto& r : compression.recipes()) {
    if (r.name() == name) return &r;
  }
  return nullptr;
}

std::optional<int64_t> NamedTeacher(const v1::DistillCompression& d) {
  if (d.teacher().empty() || d.teacher() == "best") return std::nullopt;
  int64_t id = -1;
  if (!absl::SimpleAtoi(d.teacher(), &id) || id < 0) return std::nullopt;
  return id;
}

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
    if (r.has_distill()) {
      auto* d = r.mutable_distill();
      if (d->alpha() == 0) d->set_alpha(0.5);
      if (d->temperature() == 0) d->set_temperature(4);
      if (d->epochs() == 0) d->set_epochs(std::max(1, job_epochs));
      if (d->teacher().empty()) d->set_teacher("best");
    }
  }
}

absl::Status ValidateCompression(const v1::JobSpec& spec, absl::string_view path) {
  const v1::Compression& compression = spec.compression();
  const std::string& dataset = spec.training().dataset();
  if (compression.recipes_size() == 0) return absl::OkStatus();
  const std::string recipes = path.empty() ? "recipes" : absl::StrCat(path, ".recipes");
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
      return FieldError(at, "names no kind; one of: int8, prune, distill");
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
      const SpaceKind* kind = KindOf(spec.search_space());
      if (spec.has_search_space() && (kind == nullptr || !kind->Prunable())) {
        const std::string name = KindName(spec.search_space());
        return FieldError(
            absl::StrCat(at, ".prune"),
            absl::StrCat("search space kind '", name.empty() ? "none" : name,
                         "' has no widths pruning can rewrite; prunable kinds: ", PrunableKinds()));
      }
    }
    if (r.has_distill()) {
      const auto& d = r.distill();
      const std::string f = absl::StrCat(at, ".distill");
      if (!(d.alpha() > 0 && d.alpha() <= 1)) {
        return FieldError(f + ".alpha", absl::StrCat(d.alpha(), " is not in (0, 1]"));
      }
      if (!(d.temperature() > 0 && d.temperature() <= 20)) {
        return FieldError(f + ".temperature", absl::StrCat(d.temperature(), " is not in (0, 20]"));
      }
      if (d.epochs() < 1 || d.epochs() > 1000) {
        return FieldError(f + ".epochs", absl::StrCat(d.epochs(), " is not in [1, 1000]"));
      }
      if (d.teacher() != "best" && !d.teacher().empty() && !NamedTeacher(d)) {
        return FieldError(f + ".teacher",
                          absl::StrCat("'", d.teacher(), "' is neither \"best\" nor a trial id"));
      }
      if (!d.student().empty()) {
        const v1::CompressionRecipe* s = FindRecipe(compression, d.student());
        if (s == nullptr || !s->has_prune()) {
          return FieldError(f + ".student",
                            absl::StrCat("'", d.student(), "' names no prune recipe of this job"));
        }
      }
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<v1::Architecture> PrunedArchitecture(const v1::Architecture& arch_in, double ratio) {
  const v1::Architecture arch = NormalizedArchitecture(arch_in);
  const SpaceKind* kind = KindOf(arch);
  if (kind == nullptr || !kind->Prunable()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "kind ", KindName(arch), " cannot be pruned (prunable kinds: ", PrunableKinds(), ")"));
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
  if (kind->ResidualsFollowWidths()) {
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
