#include "core/jobspec.h"

#include <google/protobuf/util/json_util.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "core/compression.h"
#include "core/datasets.h"
#include "core/early_stopping.h"
#include "core/finite.h"
#include "core/hardware_targets.h"
#include "core/pareto.h"
#include "core/recipe.h"
#include "core/search_space.h"
#include "core/status.h"
#include "core/strategies/strategy.h"

namespace nasforge {

void ApplyJobSpecDefaults(v1::JobSpec* spec) {
  ApplyStrategyDefaults(spec);
  auto* b = spec->mutable_budget();
  if (b->max_parallel_trials() == 0) b->set_max_parallel_trials(2);
  if (b->max_attempts() == 0) b->set_max_attempts(3);
  if (b->epochs() == 0) b->set_epochs(1);
  if (spec->objectives().empty()) {
    auto* o = spec->add_objectives();
    o->set_metric("accuracy");
    o->set_direction(v1::MAXIMIZE);
    o = spec->add_objectives();
    o->set_metric("macs");
    o->set_direction(v1::MINIMIZE);
  }
  auto* t = spec->mutable_training();
  // Names are matched case-insensitively (`dataset: Fashion-MNIST`, `rule: ASHA`).
  t->set_dataset(absl::AsciiStrToLower(t->dataset()));
  if (spec->has_early_stopping()) {
    spec->mutable_early_stopping()->set_rule(absl::AsciiStrToLower(spec->early_stopping().rule()));
  }
  if (t->dataset().empty()) t->set_dataset("fashion-mnist");
  if (t->batch_size() == 0) t->set_batch_size(128);
  if (t->learning_rate() == 0) t->set_learning_rate(0.002);
  if (t->weight_decay() == 0) t->set_weight_decay(1e-4);
  // Files of the user's: their size is unknown here, so 0 stays (the worker holds out a tenth).
  if (t->validation_examples() == 0 && !IsFileDataset(t->dataset())) {
    t->set_validation_examples(5000);
  }
  if (spec->lease_seconds() == 0) spec->set_lease_seconds(60);
  ApplyHardwareTargetDefaults(spec);
  ApplyCompressionDefaults(spec->mutable_compression(), spec->budget().epochs());
  if (spec->accuracy_scale() == v1::ACCURACY_SCALE_UNSPECIFIED) {
    spec->set_accuracy_scale(t->dataset() == "tabular" ? v1::PERCENT : v1::FRACTION);
  }
}

absl::Status ValidateLabels(const google::protobuf::Map<std::string, std::string>& labels,
                            absl::string_view path) {
  if (labels.size() > 32)
    return FieldError(path, absl::StrCat(labels.size(), " labels; at most 32"));
  for (const auto& [k, v] : labels) {
    const std::string where = absl::StrCat(path, "[", k.substr(0, 64), "]");
    if (k.empty() || k.size() > 63) return FieldError(where, "a key has 1 to 63 characters");
    for (char ch : k) {
      if (!absl::ascii_isalnum(ch) && ch != '.' && ch != '_' && ch != '/' && ch != '-') {
        return FieldError(where, "a key is made of letters, digits and . _ / -");
      }
    }
    if (v.size() > 256) return FieldError(where, "a value has at most 256 characters");
  }
  return absl::OkStatus();
}

namespace {

// The source list's shape (the controller checks that each source exists and fits).
absl::Status ValidateWarmStartJobs(const v1::WarmStart& w) {
  if (w.jobs_size() > 16) {
    return FieldError("warm_start.jobs", absl::StrCat(w.jobs_size(), " jobs; at most 16"));
  }
  std::set<std::string> seen;
  for (int i = 0; i < w.jobs_size(); ++i) {
    const std::string where = absl::StrCat("warm_start.jobs[", i, "]");
    if (w.jobs(i).empty() || w.jobs(i).size() > 64) {
      return FieldError(where, "a job id has 1 to 64 characters");
    }
    if (!seen.insert(w.jobs(i)).second) return FieldError(where, "named twice");
  }
  return absl::OkStatus();
}

// Normalisation and augmentation options: sizes, signs, bounds.
absl::Status ValidateImageOptions(const v1::JobSpec& spec) {
  const auto& t = spec.training();
  if (t.mean_size() != t.std_size()) {
    return FieldError("training.std", absl::StrCat("has ", t.std_size(), " values, mean has ",
                                                   t.mean_size(), " (one per channel each)"));
  }
  if (t.mean_size() > 0 && !SpaceInputShape(spec.search_space()).flat &&
      !HasTables(spec.search_space())) {
    const int channels = SpaceInputShape(spec.search_space()).channels;
    if (t.mean_size() != channels) {
      return FieldError("training.mean",
                        absl::StrCat("has ", t.mean_size(), " values; the space's images have ",
                                     channels, " channels"));
    }
  }
  for (int i = 0; i < t.std_size(); ++i) {
    if (!(t.std(i) > 0)) {
      return FieldError(absl::StrCat("training.std[", i, "]"), "must be > 0");
    }
  }
  if (t.random_crop_padding() < 0 || t.random_crop_padding() > 64) {
    return FieldError("training.random_crop_padding", "is out of range [0, 64]");
  }
  if (!t.data_path().empty() && !IsFileDataset(t.dataset())) {
    return FieldError("training.data_path",
                      absl::StrCat("is only for idx, cifar and npy data, not '", t.dataset(), "'"));
  }
  return absl::OkStatus();
}

// Everything but the strategy (which ValidateJobSpec checks last, through its registry).
absl::Status ValidateSpecFields(const v1::JobSpec& spec) {
  if (spec.ByteSizeLong() > kMaxSpecBytes) {
    return FieldError("spec", absl::StrCat(spec.ByteSizeLong(), " bytes encoded; at most ",
                                           kMaxSpecBytes, " are accepted"));
  }
  NF_RETURN_IF_ERROR(ValidateFinite(spec, ""));
  if (spec.name().size() > 200) return FieldError("name", "longer than 200 characters");
  NF_RETURN_IF_ERROR(ValidateLabels(spec.labels(), "labels"));
  NF_RETURN_IF_ERROR(ValidateWarmStartJobs(spec.warm_start()));
  NF_RETURN_IF_ERROR(ValidateCompression(spec, "compression"));
  if (!v1::AccuracyScale_IsValid(spec.accuracy_scale()) ||
      spec.accuracy_scale() == v1::ACCURACY_SCALE_UNSPECIFIED) {
    return FieldError("accuracy_scale", "must be FRACTION or PERCENT");
  }
  if (!spec.has_search_space()) return FieldError("search_space", "is required");
  NF_RETURN_IF_ERROR(ValidateSearchSpace(spec.search_space(), "search_space"));
  const auto& b = spec.budget();
  if (b.max_trials() < 1)
    return FieldError("budget.max_trials", absl::StrCat(b.max_trials(), " must be >= 1"));
  if (b.max_trials() > 1'000'000) return FieldError("budget.max_trials", "must be <= 1000000");
  if (b.max_parallel_trials() < 1) return FieldError("budget.max_parallel_trials", "must be >= 1");
  if (b.epochs() < 1 || b.epochs() > 1000)
    return FieldError("budget.epochs", absl::StrCat(b.epochs(), " is out of range [1, 1000]"));
  if (b.max_attempts() < 1 || b.max_attempts() > 100)
    return FieldError("budget.max_attempts", "is out of range [1, 100]");
  if (spec.objectives().empty()) return FieldError("objectives", "needs at least one objective");
  NF_RETURN_IF_ERROR(ValidateObjectives(spec.objectives(), "objectives"));
  NF_RETURN_IF_ERROR(ValidateConstraints(spec.constraints(), "constraints"));
  NF_RETURN_IF_ERROR(ValidateHardwareTargets(spec));
  const auto& t = spec.training();
  if (spec.lease_seconds() < 5 || spec.lease_seconds() > 86400)
    return FieldError("lease_seconds", "is out of range [5, 86400]");
  NF_RETURN_IF_ERROR(
      ValidateEarlyStopping(spec.early_stopping(), spec.budget().epochs(), "early_stopping"));
  if (t.batch_size() < 1 || t.batch_size() > 65536)
    return FieldError("training.batch_size", "is out of range [1, 65536]");
  if (t.learning_rate() <= 0 || t.learning_rate() > 10)
    return FieldError("training.learning_rate", "is out of range (0, 10]");
  if (t.weight_decay() < 0) return FieldError("training.weight_decay", "must be >= 0");
  if (t.patience() < 0) return FieldError("training.patience", "must be >= 0");
  if (t.train_examples() < 0) return FieldError("training.train_examples", "must be >= 0");
  if (t.test_examples() < 0) return FieldError("training.test_examples", "must be >= 0");
  if (BuiltInTrainerDataset(t.dataset())) {
    NF_RETURN_IF_ERROR(ValidateRecipeParameters(spec.search_space(), "search_space"));
  }
  NF_RETURN_IF_ERROR(ValidateImageOptions(spec));
  // Images each data set holds: (training images, test images). All are 1x28x28, 10 classes.
  int train_images, test_images;
  if (t.dataset() == "fashion-mnist") {
    train_images = 60000, test_images = 10000;
  } else if (t.dataset() == "synthetic") {
    train_images = 8000, test_images = 2000;
  } else if (t.dataset() == "tabular") {
    // Answered by tabular workers (--backend tabular) from a benchmark table: no images.
    if (!HasTables(spec.search_space()) && spec.search_space().parameters_size() == 0) {
      return FieldError("training.dataset",
                        "tabular answers from a benchmark table keyed by NAS-Bench-201 cells "
                        "(search_space.nb201) or by parameters (search_space.parameters): the "
                        "search space has neither");
    }
    return absl::OkStatus();  // no images: the image-shape checks below do not apply
  } else if (t.dataset() == "external") {
    // The user's own data, trained by the user's own code (the Python SDK's workers): its
    // shapes are the space's to say, and only those workers lease it.
    return absl::OkStatus();
  } else if (IsFileDataset(t.dataset())) {
    // The user's files, read by each worker: shapes and class counts are checked there (the
    // controller never sees the files); only the path is checked here.
    return ValidateDataPath(t.data_path(), "training.data_path");
  } else {
    return FieldError("training.dataset",
                      absl::StrCat("'", t.dataset(),
                                   "' is not one of fashion-mnist, synthetic, tabular, idx, "
                                   "cifar, npy, external"));
  }
  if (t.validation_examples() < 1)
    return FieldError("training.validation_examples", "must be >= 1");
  if (t.train_examples() + t.validation_examples() >= train_images) {
    return FieldError("training.train_examples",
                      absl::StrCat("train_examples + validation_examples must stay below the ",
                                   train_images, " training images of ", t.dataset()));
  }
  if (t.test_examples() < 0 || t.test_examples() > test_images)
    return FieldError("training.test_examples",
                      absl::StrCat("is out of range [0, ", test_images, "]"));
  // The field errors below name the kind's input field (a custom kind's: its choice).
  const std::string kind = absl::StrCat("search_space.", spec.search_space().has_custom()
                                                             ? "custom.choices"
                                                             : KindName(spec.search_space()));
  const InputShape in = SpaceInputShape(spec.search_space());
  if (in.flat) {
    if (in.channels != 28 * 28) {
      return FieldError(kind + ".in_features", absl::StrCat(in.channels, ": ", t.dataset(),
                                                            " images flatten to 784 features"));
    }
  } else {
    if (in.channels != 1) {
      return FieldError(kind + ".in_channels",
                        absl::StrCat(in.channels, ": ", t.dataset(), " images have 1 channel"));
    }
    // Other resolutions are fine: the worker resizes the 28x28 images (bilinear), as
    // compound scaling's resolution factor needs.
  }
  if (in.num_classes != 10) {
    return FieldError(kind + ".num_classes",
                      absl::StrCat(in.num_classes, ": ", t.dataset(), " has 10 classes"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ValidateJobSpec(const v1::JobSpec& spec) {
  NF_RETURN_IF_ERROR(ValidateSpecFields(spec));
  return ValidateStrategy(spec);
}

absl::StatusOr<v1::JobSpec> ParseJobSpecYaml(absl::string_view yaml) {
  v1::JobSpec spec;
  NF_RETURN_IF_ERROR(YamlToMessage(yaml, &spec));
  ApplyJobSpecDefaults(&spec);
  NF_RETURN_IF_ERROR(ValidateJobSpec(spec));
  return spec;
}

}  // namespace nasforge
