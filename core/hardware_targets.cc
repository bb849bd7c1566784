#include "core/hardware_targets.h"

#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "core/latency_runtimes.h"
#include "core/status.h"

namespace nasforge {
namespace {

bool IsLatencyBase(absl::string_view base) {
  for (const char* m : kTargetLatencyMetrics) {
    if (base == m) return true;
  }
  return false;
}

double Value(const v1::LatencyMeasurement& m, absl::string_view base) {
  if (base == "latency_p90_ms") return m.p90_ms();
  if (base == "latency_p99_ms") return m.p99_ms();
  return m.p50_ms();
}

std::string TargetNames(const v1::JobSpec& spec) {
  std::vector<std::string> names;
  for (const auto& t : spec.hardware_targets()) names.push_back(t.name());
  return names.empty() ? "it has none" : absl::StrCat("its targets: ", absl::StrJoin(names, ", "));
}

}  // namespace

bool SplitTargetMetric(absl::string_view name, std::string* base, std::string* target) {
  size_t at = name.find('@');
  if (at == absl::string_view::npos) return false;
  *base = std::string(name.substr(0, at));
  *target = std::string(name.substr(at + 1));
  return true;
}

std::string TargetMetric(absl::string_view base, absl::string_view target) {
  return absl::StrCat(base, "@", target);
}

bool ValidTargetName(absl::string_view name) {
  if (name.empty() || name.size() > 64) return false;
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == '-';
    if (!ok) return false;
  }
  return true;
}

bool IsTargetMetric(absl::string_view name) {
  std::string base, target;
  return SplitTargetMetric(name, &base, &target) && IsLatencyBase(base) && ValidTargetName(target);
}

void ApplyHardwareTargetDefaults(v1::JobSpec* spec) {
  for (auto& t : *spec->mutable_hardware_targets()) {
    if (t.name().empty()) t.set_name(t.profile());
    if (t.batch_size() == 0) t.set_batch_size(1);
    if (t.precision().empty()) t.set_precision("fp32");
    ApplyLatencyRuntimeDefaults(&t);
  }
}

absl::Status ValidateHardwareTargets(const v1::JobSpec& spec) {
  std::set<std::string> names;
  for (int i = 0; i < spec.hardware_targets_size(); ++i) {
    const auto& t = spec.hardware_targets(i);
    const std::string p = absl::StrCat("hardware_targets[", i, "]");
    if (spec.training().dataset() == "tabular") {
      return FieldError(p,
                        "a tabular job has no model to measure (its latency comes from the table)");
    }
    if (t.profile().empty()) {
      return FieldError(p + ".profile",
                        "is required (the hardware profile of the workers that "
                        "measure it, e.g. cpu-1t or h200)");
    }
    if (t.profile().size() > 128) return FieldError(p + ".profile", "longer than 128 characters");
    if (!ValidTargetName(t.name())) {
      return FieldError(
          p + ".name",
          absl::StrCat("'", t.name(), "' is not a target name (1-64 of A-Z a-z 0-9 _ . -)"));
    }
    if (!names.insert(t.name()).second) {
      return FieldError(p + ".name",
                        absl::StrCat("'", t.name(), "' names two targets; give each its own name"));
    }
    if (t.batch_size() < 1 || t.batch_size() > 4096) {
      return FieldError(p + ".batch_size",
                        absl::StrCat(t.batch_size(), " is out of range [1, 4096]"));
    }
    if (t.threads() < 0 || t.threads() > 1024) {
      return FieldError(p + ".threads", absl::StrCat(t.threads(), " is out of range [0, 1024]"));
    }
    NF_RETURN_IF_ERROR(ValidateLatencyRuntime(t, p));
  }
  auto check = [&](const std::string& metric, const std::string& field) -> absl::Status {
    std::string base, target;
    if (!SplitTargetMetric(metric, &base, &target)) return absl::OkStatus();
    if (!names.count(target)) {
      return FieldError(field, absl::StrCat("'", metric, "' names no hardware target of the job (",
                                            TargetNames(spec), ")"));
    }
    return absl::OkStatus();
  };
  for (int i = 0; i < spec.objectives_size(); ++i) {
    NF_RETURN_IF_ERROR(
        check(spec.objectives(i).metric(), absl::StrCat("objectives[", i, "].metric")));
  }
  for (int i = 0; i < spec.constraints_size(); ++i) {
    NF_RETURN_IF_ERROR(
        check(spec.constraints(i).metric(), absl::StrCat("constraints[", i, "].metric")));
  }
  return absl::OkStatus();
}

absl::Status CheckTargetExists(const v1::JobSpec& spec, absl::string_view target,
                               absl::string_view field) {
  for (const auto& t : spec.hardware_targets()) {
    if (t.name() == target) return absl::OkStatus();
  }
  return FieldError(field, absl::StrCat("the job has no hardware target '", target, "' (",
                                        TargetNames(spec), ")"));
}

std::string LatencyKey(absl::string_view arch_hash, const v1::HardwareTarget& t) {
  return absl::StrCat(arch_hash, "|", t.profile(), "|", LatencySetting(t));
}

std::string LatencyKey(const v1::LatencyMeasurement& m) {
  return absl::StrCat(m.arch_hash(), "|", m.profile(), "|", LatencySetting(m));
}

std::vector<v1::Constraint> TargetBounds(const v1::JobSpec& spec, absl::string_view target) {
  std::vector<v1::Constraint> out;
  for (const auto& c : spec.constraints()) {
    std::string base, t;
    if (SplitTargetMetric(c.metric(), &base, &t) && t == target) out.push_back(c);
  }
  return out;
}

std::string BrokenBound(const std::vector<v1::Constraint>& bounds,
                        const v1::LatencyMeasurement& m) {
  for (const auto& c : bounds) {
    std::string base, target;
    SplitTargetMetric(c.metric(), &base, &target);
    const double v = Value(m, base);
    if (c.has_upper() && v > c.upper()) {
      return absl::StrFormat("%s = %.4g ms > upper %g", c.metric(), v, c.upper());
    }
    if (c.has_lower() && v < c.lower()) {
      return absl::StrFormat("%s = %.4g ms < lower %g", c.metric(), v, c.lower());
    }
  }
  return "";
}

std::string ResolveForTarget(const std::string& name, const std::string& target) {
  if (target.empty() || !IsLatencyBase(name)) return name;
  return TargetMetric(name, target);
}

}  // namespace nasforge
