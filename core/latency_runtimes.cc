// The latency runtimes' table (latency_runtimes.h).
#include "core/latency_runtimes.h"

#include <cctype>
#include <map>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/status.h"

namespace nasforge {
namespace {

// The one list of built-in runtimes (the worker registers an implementation of each:
// worker/torch_latency.cc).
void Builtins(NameRegistry<LatencyRuntimeInfo>& r) {
  const std::vector<LatencyOptionInfo> torch_options = {
      {"channels_last",
       "NHWC weights and input for conv nets (faster with tensor cores)",
       {"false", "true"}}};
  r.AddBuiltin({kDefaultLatencyRuntime,
                "LibTorch eager: the network the worker trains, run forward in inference mode "
                "(CUDA events on a GPU, a steady clock on the CPU)",
                {"fp32", "bf16", "fp16"},
                torch_options});
  r.AddBuiltin({"libtorch-cuda-graph",
                "LibTorch with one forward pass captured as a CUDA graph and replayed: the "
                "latency without the host's kernel-launch overhead (a GPU worker only)",
                {"fp32", "bf16", "fp16"},
                torch_options});
}

bool IsListed(const std::vector<std::string>& v, const std::string& s) {
  for (const auto& x : v) {
    if (x == s) return true;
  }
  return false;
}

bool ValidValue(const std::string& v) {
  if (v.empty() || v.size() > 64) return false;
  for (char c : v) {
    if (!(isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '-' || c == ':')) {
      return false;
    }
  }
  return true;
}

std::string Setting(int batch, const std::string& precision, const std::string& runtime,
                    int threads, const google::protobuf::Map<std::string, std::string>& options) {
  std::string s = absl::StrCat("batch=", batch, ";precision=", precision,
                               ";runtime=", runtime.empty() ? kDefaultLatencyRuntime : runtime,
                               ";threads=", threads);
  // An option at its default is left out: a setting means the same whether the option was
  // spelt out or not, and a runtime that gains an option keeps its earlier keys.
  const LatencyRuntimeInfo* rt =
      LatencyRuntimes().Find(runtime.empty() ? kDefaultLatencyRuntime : runtime);
  std::map<std::string, std::string> sorted(options.begin(), options.end());
  for (const auto& [k, v] : sorted) {
    bool is_default = false;
    if (rt != nullptr) {
      for (const auto& o : rt->options) {
        if (o.name == k && !o.values.empty() && o.values.front() == v) is_default = true;
      }
    }
    if (!is_default) absl::StrAppend(&s, ";o.", k, "=", v);
  }
  return s;
}

}  // namespace

NameRegistry<LatencyRuntimeInfo>& LatencyRuntimes() {
  return GlobalRegistry<LatencyRuntimeInfo>("latency runtime", &Builtins);
}

void ApplyLatencyRuntimeDefaults(v1::HardwareTarget* t) {
  if (t->runtime().empty()) t->set_runtime(kDefaultLatencyRuntime);
}

std::string LatencyOption(const v1::HardwareTarget& t, const std::string& name) {
  auto it = t.options().find(name);
  if (it != t.options().end()) return it->second;
  const LatencyRuntimeInfo* rt =
      LatencyRuntimes().Find(t.runtime().empty() ? kDefaultLatencyRuntime : t.runtime());
  if (rt != nullptr) {
    for (const auto& o : rt->options) {
      if (o.name == name && !o.values.empty()) return o.values.front();
    }
  }
  return "";
}

absl::Status ValidateLatencyRuntime(const v1::HardwareTarget& t, const std::string& path) {
  const std::string name = t.runtime().empty() ? kDefaultLatencyRuntime : t.runtime();
  const LatencyRuntimeInfo* rt = LatencyRuntimes().Find(name);
  if (rt == nullptr) return FieldError(path + ".runtime", LatencyRuntimes().Unknown(name));
  const std::string precision = t.precision().empty() ? "fp32" : t.precision();
  if (!IsListed(rt->precisions, precision)) {
    return FieldError(path + ".precision",
                      absl::StrCat("'", precision, "' is not one of ",
                                   absl::StrJoin(rt->precisions, ", "), " (runtime ", name, ")"));
  }
  std::map<std::string, std::string> sorted(t.options().begin(), t.options().end());
  for (const auto& [k, v] : sorted) {
    const std::string field = absl::StrCat(path, ".options[", k, "]");
    const LatencyOptionInfo* opt = nullptr;
    for (const auto& o : rt->options) {
      if (o.name == k) opt = &o;
    }
    if (opt == nullptr) {
      std::vector<std::string> names;
      for (const auto& o : rt->options) names.push_back(o.name);
      return FieldError(
          field, absl::StrCat("runtime ", name, " has no option '", k, "' (",
                              names.empty() ? "it takes none" : absl::StrJoin(names, ", "), ")"));
    }
    if (!ValidValue(v) || (!opt->values.empty() && !IsListed(opt->values, v))) {
      return FieldError(field,
                        absl::StrCat("'", v, "' is not one of ", absl::StrJoin(opt->values, ", ")));
    }
  }
  return absl::OkStatus();
}

std::string LatencySetting(const v1::HardwareTarget& t) {
  return Setting(t.batch_size(), t.precision(), t.runtime(), t.threads(), t.options());
}

std::string LatencySetting(const v1::LatencyMeasurement& m) {
  return Setting(m.batch_size(), m.precision(), m.runtime(), m.threads(), m.options());
}

bool MeasuresTarget(const v1::Worker& w, const v1::HardwareTarget& t) {
  if (!w.measures_latency() || w.hardware().name() != t.profile()) return false;
  if (t.threads() != 0 && t.threads() != w.hardware().threads()) return false;
  const std::string runtime = t.runtime().empty() ? kDefaultLatencyRuntime : t.runtime();
  if (w.latency_runtimes().empty()) return runtime == kDefaultLatencyRuntime;
  for (const std::string& r : w.latency_runtimes()) {
    if (r == runtime) return true;
  }
  return false;
}

std::string MeasurerDescription(const v1::HardwareTarget& t) {
  std::string s = absl::StrCat("profile '", t.profile(), "'");
  if (t.threads() > 0) absl::StrAppend(&s, " with ", t.threads(), " threads");
  const std::string runtime = t.runtime().empty() ? kDefaultLatencyRuntime : t.runtime();
  if (runtime != kDefaultLatencyRuntime) absl::StrAppend(&s, " and runtime ", runtime);
  return s;
}

}  // namespace nasforge
