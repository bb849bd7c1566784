#include "core/jobspec.h"

#include <google/protobuf/util/json_util.h>
#include <yaml-cpp/yaml.h>

#include <nlohmann/json.hpp>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "core/pareto.h"
#include "core/search_space.h"
#include "core/status.h"

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
  if (absl::SimpleAtod(s, &d) && s != "inf" && s != "nan") return d;
  return s;
}

nlohmann::json YamlToJson(const YAML::Node& n) {
  switch (n.Type()) {
    case YAML::NodeType::Null:
    case YAML::NodeType::Undefined:
      return nullptr;
    case YAML::NodeType::Scalar:
      return ScalarToJson(n);
    case YAML::NodeType::Sequence: {
      nlohmann::json a = nlohmann::json::array();
      for (const auto& e : n) a.push_back(YamlToJson(e));
      return a;
    }
    case YAML::NodeType::Map: {
      nlohmann::json o = nlohmann::json::object();
      for (const auto& kv : n) o[kv.first.as<std::string>()] = YamlToJson(kv.second);
      return o;
    }
  }
  return nullptr;
}

}  // namespace

absl::Status YamlToMessage(absl::string_view yaml, google::protobuf::Message* message) {
  nlohmann::json j;
  try {
    YAML::Node root = YAML::Load(std::string(yaml));
    if (!root.IsMap()) return absl::InvalidArgumentError("spec: the document must be a mapping");
    j = YamlToJson(root);
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("spec: YAML syntax error at line ",
                                                   e.mark.line + 1, ", column ", e.mark.column + 1,
                                                   ": ", e.msg));
  }
  google::protobuf::util::JsonParseOptions opts;
  opts.ignore_unknown_fields = false;
  auto st = google::protobuf::util::JsonStringToMessage(j.dump(), message, opts);
  if (!st.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("spec: ", st.message().as_string()));
  }
  return absl::OkStatus();
}

void ApplyJobSpecDefaults(v1::JobSpec* spec) {
  if (spec->strategy().name().empty()) spec->mutable_strategy()->set_name("random");
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
}

absl::Status ValidateJobSpec(const v1::JobSpec& spec) {
  if (spec.name().size() > 200) return FieldError("name", "longer than 200 characters");
  if (!spec.has_search_space()) return FieldError("search_space", "is required");
  NF_RETURN_IF_ERROR(ValidateSearchSpace(spec.search_space(), "search_space"));
  const auto& s = spec.strategy().name();
  if (s != "random") {
    return FieldError("strategy.name",
                      absl::StrCat("'", s, "' is not supported (supported: random)"));
  }
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
  const auto& t = spec.training();
  if (t.dataset() != "fashion-mnist" && t.dataset() != "mnist" && t.dataset() != "synthetic") {
    return FieldError(
        "training.dataset",
        absl::StrCat("'", t.dataset(), "' is not one of fashion-mnist, mnist, synthetic"));
  }
  if (t.train_examples() < 0) return FieldError("training.train_examples", "must be >= 0");
  if (t.validation_examples() < 1)
    return FieldError("training.validation_examples", "must be >= 1");
  if (t.train_examples() + t.validation_examples() > 60000) {
    return FieldError("training.train_examples",
                      "train_examples + validation_examples exceed the 60000 training images");
  }
  if (t.test_examples() < 0 || t.test_examples() > 10000)
    return FieldError("training.test_examples", "is out of range [0, 10000]");
  if (t.batch_size() < 1 || t.batch_size() > 65536)
    return FieldError("training.batch_size", "is out of range [1, 65536]");
  if (t.learning_rate() <= 0 || t.learning_rate() > 10)
    return FieldError("training.learning_rate", "is out of range (0, 10]");
  if (t.weight_decay() < 0) return FieldError("training.weight_decay", "must be >= 0");
  if (t.patience() < 0) return FieldError("training.patience", "must be >= 0");
  if (spec.lease_seconds() < 5 || spec.lease_seconds() > 86400)
    return FieldError("lease_seconds", "is out of range [5, 86400]");
  if (spec.search_space().mbconv().in_channels() != 1 && t.dataset() != "synthetic") {
    return FieldError("search_space.mbconv.in_channels",
                      "must be 1 for the grayscale Fashion-MNIST/MNIST data sets");
  }
  return absl::OkStatus();
}

absl::StatusOr<v1::JobSpec> ParseJobSpecYaml(absl::string_view yaml) {
  v1::JobSpec spec;
  NF_RETURN_IF_ERROR(YamlToMessage(yaml, &spec));
  ApplyJobSpecDefaults(&spec);
  NF_RETURN_IF_ERROR(ValidateJobSpec(spec));
  return spec;
}

}  // namespace nasforge
