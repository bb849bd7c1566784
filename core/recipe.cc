#include "core/recipe.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/parameters.h"
#include "core/status.h"

namespace nasforge {
namespace {

const std::vector<std::string> kSwitch = {"off", "on"};

const RecipeParam* Find(const std::string& name) {
  for (const auto& p : RecipeParams()) {
    if (p.name == name) return &p;
  }
  return nullptr;
}

std::string Names() {
  std::vector<std::string> n;
  for (const auto& p : RecipeParams()) n.push_back(p.name);
  return absl::StrJoin(n, ", ");
}

// A switch's value: "on"/"off" (or 1/0 as a number).
bool On(const v1::ParamValue& v) { return v.text().empty() ? v.number() != 0 : v.text() == "on"; }

// Why `v` is not a value of `p` ("" if it is).
std::string Check(const RecipeParam& p, const v1::ParamValue& v) {
  if (!p.choices.empty()) {
    if (p.choices == kSwitch && v.text().empty() && (v.number() == 0 || v.number() == 1)) return "";
    if (std::find(p.choices.begin(), p.choices.end(), v.text()) != p.choices.end()) return "";
    return absl::StrCat("'", ParamText(v), "' is not one of ", absl::StrJoin(p.choices, ", "));
  }
  if (!v.text().empty()) return absl::StrCat("'", v.text(), "' is not a number");
  if (v.number() < p.min || v.number() > p.max) {
    return absl::StrCat(FormatNumber(v.number()), " is out of range [", FormatNumber(p.min), ", ",
                        FormatNumber(p.max), "]");
  }
  if (p.integer && v.number() != std::round(v.number())) {
    return absl::StrCat(FormatNumber(v.number()), " is not an integer");
  }
  return "";
}

}  // namespace

const std::vector<RecipeParam>& RecipeParams() {
  static const std::vector<RecipeParam> k = {
      {"learning_rate", "the optimizer's peak learning rate", {}, 1e-7, 10},
      {"weight_decay", "decoupled (AdamW) or L2 (SGD) weight decay", {}, 0, 1},
      {"batch_size", "training batch size", {}, 1, 65536, true},
      {"optimizer", "adamw or sgd (momentum, optionally Nesterov)", {"adamw", "sgd"}},
      {"momentum", "SGD momentum", {}, 0, 0.999},
      {"nesterov", "Nesterov momentum for SGD", kSwitch},
      {"schedule", "learning-rate schedule", {"constant", "cosine", "step", "onecycle"}},
      {"warmup_epochs", "linear warm-up from 0 (constant, cosine, step)", {}, 0, 1000},
      {"label_smoothing", "cross-entropy label smoothing", {}, 0, 0.5},
      {"dropout", "dropout before the classifier", {}, 0, 0.9},
      {"augment", "flips and 2-pixel shifts of training images", kSwitch},
      {"random_crop_padding", "random crops with this zero padding", {}, 0, 64, true},
      {"horizontal_flip", "random left-right flips", kSwitch},
      {"precision", "bf16: mixed precision where the device has it (CUDA)", {"fp32", "bf16"}},
  };
  return k;
}

bool BuiltInTrainerDataset(const std::string& dataset) {
  return dataset != "tabular" && dataset != "external";
}

absl::Status ValidateRecipeParameters(const v1::SearchSpace& space, const std::string& path) {
  for (int j = 0; j < space.parameters_size(); ++j) {
    const auto& param = space.parameters(j);
    const std::string at = absl::StrCat(path, ".parameters[", j, "]");
    const RecipeParam* p = Find(param.name());
    if (p == nullptr) {
      return FieldError(
          at + ".name",
          absl::StrCat("the built-in trainer has no parameter '", param.name(), "' (", Names(),
                       "); jobs of training.dataset external pass any name to "
                       "their workers"));
    }
    // Every value the domain can take: its ends for ranges, each listed value otherwise.
    std::vector<v1::ParamValue> values;
    auto number = [&](double x) {
      v1::ParamValue v;
      v.set_number(x);
      values.push_back(v);
    };
    switch (param.domain_case()) {
      case v1::Parameter::kReal:
        number(param.real().low());
        number(param.real().high());
        if (p->integer) {
          return FieldError(at + ".real", absl::StrCat(p->name,
                                                       " is an integer: use integer or "
                                                       "ordinal"));
        }
        break;
      case v1::Parameter::kInteger:
        number(static_cast<double>(param.integer().low()));
        number(static_cast<double>(param.integer().high()));
        break;
      case v1::Parameter::kOrdinal:
        for (double x : param.ordinal().values()) number(x);
        break;
      case v1::Parameter::kCategorical:
        for (const auto& s : param.categorical().values()) {
          v1::ParamValue v;
          v.set_text(s);
          values.push_back(v);
        }
        break;
      default:
        break;
    }
    for (const auto& v : values) {
      std::string why = Check(*p, v);
      if (!why.empty()) return FieldError(at, absl::StrCat(p->name, ": ", why));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<Recipe> ResolveRecipe(const v1::Training& t, const v1::Architecture& arch) {
  Recipe r;
  if (t.learning_rate() > 0) r.learning_rate = t.learning_rate();
  r.weight_decay = t.weight_decay();
  if (t.batch_size() > 0) r.batch_size = t.batch_size();
  r.augment = t.augment();
  r.random_crop_padding = t.random_crop_padding();
  r.horizontal_flip = t.horizontal_flip();
  for (const auto& v : arch.params().values()) {
    const std::string at = absl::StrCat("architecture.params[", v.name(), "]");
    const RecipeParam* p = Find(v.name());
    if (p == nullptr) {
      return FieldError(at, absl::StrCat("the built-in trainer has no parameter '", v.name(), "' (",
                                         Names(), ")"));
    }
    std::string why = Check(*p, v);
    if (!why.empty()) return FieldError(at, why);
    const std::string& n = v.name();
    const double x = v.number();
    if (n == "learning_rate") r.learning_rate = x;
    if (n == "weight_decay") r.weight_decay = x;
    if (n == "batch_size") r.batch_size = static_cast<int>(x);
    if (n == "optimizer") r.optimizer = v.text();
    if (n == "momentum") r.momentum = x;
    if (n == "nesterov") r.nesterov = On(v);
    if (n == "schedule") r.schedule = v.text();
    if (n == "warmup_epochs") r.warmup_epochs = x;
    if (n == "label_smoothing") r.label_smoothing = x;
    if (n == "dropout") r.dropout = x;
    if (n == "augment") r.augment = On(v);
    if (n == "random_crop_padding") r.random_crop_padding = static_cast<int>(x);
    if (n == "horizontal_flip") r.horizontal_flip = On(v);
    if (n == "precision") r.precision = v.text();
  }
  return r;
}

double LearningRateAt(const Recipe& r, int64_t step, int64_t steps_per_epoch, int64_t total_steps) {
  const double lr = r.learning_rate;
  const double total = static_cast<double>(std::max<int64_t>(1, total_steps));
  const double s = static_cast<double>(step);
  if (r.schedule == "onecycle") {
    const double rise = 0.3 * total;
    if (s < rise) return lr / 25 + (lr - lr / 25) * s / rise;
    const double p = (s - rise) / std::max(1.0, total - rise);
    return lr / 1e4 + (lr - lr / 1e4) * 0.5 * (1 + std::cos(M_PI * p));
  }
  const double warm = std::min(total, r.warmup_epochs * static_cast<double>(steps_per_epoch));
  if (s < warm) return lr * (s + 1) / warm;
  if (r.schedule == "constant") return lr;
  if (r.schedule == "step") {
    const double p = s / total;
    return lr * (p >= 0.75 ? 0.01 : p >= 0.5 ? 0.1 : 1.0);
  }
  // cosine from the end of the warm-up to 0 (without a warm-up: the trainer's old schedule).
  const double p = warm > 0 ? (s - warm) / std::max(1.0, total - warm) : s / total;
  return lr * 0.5 * (1 + std::cos(M_PI * p));
}

}  // namespace nasforge
