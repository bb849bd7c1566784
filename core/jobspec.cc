#include "core/jobspec.h"

#include <google/protobuf/util/json_util.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "core/early_stopping.h"
#include "core/finite.h"
#include "core/hardware_targets.h"
#include "core/pareto.h"
#include "core/search_space.h"
#include "core/status.h"
#include "core/strategies/strategy.h"

namespace nasforge {
namespace {

nlohmann::json ScalarToJson(const YAML::Node& n) {
  const std::string& s = n.Scalar();
  if (n.Tag() == "!") return s;  // quoted: always a string
  if (s == "true" || s == "True") return true;
  if (s == "false" || s == "False") return false;
  if (s == "~" || s == "null" || s.empty()) return nullptr;
  int64_t i;
  if (absl::SimpleAtoi(s, &i)) return i;
  uint64_t u;
  if (absl::SimpleAtoi(s, &u)) return u;
  double d;
  // NaN and infinities stay text: the protobuf parser refuses them or ValidateFinite names them.
  if (absl::SimpleAtod(s, &d) && std::isfinite(d)) return d;
  return s;
}

// Converts a YAML tree, counting every node it expands: aliases are expanded each time they are
// used, so a few bytes of anchors can stand for billions of nodes ("billion laughs").
class YamlConverter {
 public:
  absl::StatusOr<nlohmann::json> Convert(const YAML::Node& n, int depth) {
    if (++nodes_ > kMaxSpecNodes) {
      return absl::InvalidArgumentError(absl::StrCat(
          "spec: more than ", kMaxSpecNodes, " YAML nodes once aliases are expanded (line ",
          n.Mark().line + 1, "); a job spec needs a few hundred"));
    }
    if (depth > kMaxSpecDepth) {
      return absl::InvalidArgumentError(absl::StrCat("spec: nested deeper than ", kMaxSpecDepth,
                                                     " levels at line ", n.Mark().line + 1));
    }
    switch (n.Type()) {
      case YAML::NodeType::Null:
      case YAML::NodeType::Undefined:
        return nullptr;
      case YAML::NodeType::Scalar:
        return ScalarToJson(n);
      case YAML::NodeType::Sequence: {
        nlohmann::json a = nlohmann::json::array();
        for (const auto& e : n) {
          NF_ASSIGN_OR_RETURN(nlohmann::json v, Convert(e, depth + 1));
          a.push_back(std::move(v));
        }
        return a;
      }
      case YAML::NodeType::Map: {
        nlohmann::json o = nlohmann::json::object();
        for (const auto& kv : n) {
          if (!kv.first.IsScalar()) {
            return absl::InvalidArgumentError(absl::StrCat("spec: line ", kv.first.Mark().line + 1,
                                                           ": a mapping key must be a plain name"));
          }
          const std::string& key = kv.first.Scalar();
          if (o.contains(key)) {
            return absl::InvalidArgumentError(absl::StrCat("spec: line ", kv.first.Mark().line + 1,
                                                           ": duplicate key '", key, "'"));
          }
          NF_ASSIGN_OR_RETURN(nlohmann::json v, Convert(kv.second, depth + 1));
          o[key] = std::move(v);
        }
        return o;
      }
    }
    return nullptr;
  }

 private:
  int64_t nodes_ = 0;
};

void EmitJson(const nlohmann::json& j, YAML::Emitter* out) {
  if (j.is_object()) {
    *out << YAML::BeginMap;
    for (const auto& [k, v] : j.items()) {
      *out << YAML::Key << k << YAML::Value;
      EmitJson(v, out);
    }
    *out << YAML::EndMap;
  } else if (j.is_array()) {
    // Lists of scalars read best inline: [3, 5, 7].
    bool flat = std::all_of(j.begin(), j.end(), [](const auto& e) { return e.is_primitive(); });
    *out << (flat ? YAML::Flow : YAML::Block) << YAML::BeginSeq;
    for (const auto& e : j) EmitJson(e, out);
    *out << YAML::EndSeq;
  } else if (j.is_string()) {
    *out << YAML::DoubleQuoted << j.get<std::string>();
  } else if (j.is_boolean()) {
    *out << j.get<bool>();
  } else if (j.is_number_integer()) {
    *out << j.get<int64_t>();
  } else if (j.is_number()) {
    *out << j.get<double>();
  } else {
    *out << YAML::Null;
  }
}

}  // namespace

std::string MessageToYaml(const google::protobuf::Message& message) {
  google::protobuf::util::JsonPrintOptions o;
  o.preserve_proto_field_names = true;
  std::string json;
  (void)google::protobuf::util::MessageToJsonString(message, &json, o);
  YAML::Emitter out;
  EmitJson(nlohmann::json::parse(json), &out);
  return out.c_str();
}

absl::Status YamlToMessage(absl::string_view yaml, google::protobuf::Message* message) {
  if (yaml.size() > kMaxSpecBytes) {
    return absl::InvalidArgumentError(absl::StrCat("spec: ", yaml.size(), " bytes; at most ",
                                                   kMaxSpecBytes, " bytes are accepted"));
  }
  nlohmann::json j;
  try {
    YAML::Node root = YAML::Load(std::string(yaml));
    if (!root.IsMap()) return absl::InvalidArgumentError("spec: the document must be a mapping");
    YamlConverter c;
    NF_ASSIGN_OR_RETURN(j, c.Convert(root, 0));
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("spec: YAML syntax error at line ",
                                                   e.mark.line + 1, ", column ", e.mark.column + 1,
                                                   ": ", e.msg));
  }
  google::protobuf::util::JsonParseOptions opts;
  opts.ignore_unknown_fields = false;
  std::string json;
  try {
    json = j.dump();
  } catch (const nlohmann::json::exception&) {  // found by fuzz/jobspec_fuzzer
    return absl::InvalidArgumentError("spec: the document is not valid UTF-8");
  }
  auto st = google::protobuf::util::JsonStringToMessage(json, message, opts);
  if (!st.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("spec: ", st.message().as_string()));
  }
  return ValidateFinite(*message, "");
}

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
  if (t->dataset().empty()) t->set_dataset("fashion-mnist");
  if (t->batch_size() == 0) t->set_batch_size(128);
  if (t->learning_rate() == 0) t->set_learning_rate(0.002);
  if (t->weight_decay() == 0) t->set_weight_decay(1e-4);
  if (t->validation_examples() == 0) t->set_validation_examples(5000);
  if (spec->lease_seconds() == 0) spec->set_lease_seconds(60);
  ApplyHardwareTargetDefaults(spec);
  if (spec->accuracy_scale() == v1::ACCURACY_SCALE_UNSPECIFIED) {
    spec->set_accuracy_scale(t->dataset() == "tabular" ? v1::PERCENT : v1::FRACTION);
  }
}

namespace {

// Everything but the strategy (which ValidateJobSpec checks last, through its registry).
absl::Status ValidateSpecFields(const v1::JobSpec& spec) {
  if (spec.ByteSizeLong() > kMaxSpecBytes) {
    return FieldError("spec", absl::StrCat(spec.ByteSizeLong(), " bytes encoded; at most ",
                                           kMaxSpecBytes, " are accepted"));
  }
  NF_RETURN_IF_ERROR(ValidateFinite(spec, ""));
  if (spec.name().size() > 200) return FieldError("name", "longer than 200 characters");
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
  // Images each data set holds: (training images, test images). All are 1x28x28, 10 classes.
  int train_images, test_images;
  if (t.dataset() == "fashion-mnist") {
    train_images = 60000, test_images = 10000;
  } else if (t.dataset() == "synthetic") {
    train_images = 8000, test_images = 2000;
  } else if (t.dataset() == "tabular") {
    // Answered by tabular workers (--backend tabular) from a benchmark table: no images.
    if (!spec.search_space().has_nb201()) {
      return FieldError("training.dataset",
                        "tabular answers NAS-Bench-201 cells: the search space must be nb201");
    }
    return absl::OkStatus();  // no images: the image-shape checks below do not apply
  } else {
    return FieldError("training.dataset", absl::StrCat("'", t.dataset(),
                                                       "' is not one of fashion-mnist, "
                                                       "synthetic, tabular"));
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
  const std::string kind = absl::StrCat("search_space.", KindName(spec.search_space()));
  const InputShape in = SpaceInputShape(spec.search_space());
  if (spec.search_space().has_mlp()) {
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
