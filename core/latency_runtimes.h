// Latency runtimes: what runs a candidate when its latency is measured on a hardware target
// (HardwareTarget.runtime), which precisions it measures and which options it takes. The one
// table the job-spec validation, the measurement's cache key, the stores and the controller's
// routing read; the worker's implementations are registered by the same names
// (worker/latency_runtime.h). Adding a runtime: an entry in Builtins() in latency_runtimes.cc,
// its implementation (a file in worker/ and one line registering it), and its test
// (docs/EXTENDING.md, "A latency runtime").
#pragma once

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "core/registry.h"
#include "nasforge/v1/nasforge.pb.h"

namespace nasforge {

// The runtime of a target that names none.
inline constexpr const char* kDefaultLatencyRuntime = "libtorch";

struct LatencyOptionInfo {
  std::string name;  // [a-z0-9_]+, not batch/precision/runtime/threads
  std::string help;
  std::vector<std::string> values;  // the accepted values; the first is the default
};

struct LatencyRuntimeInfo {
  std::string name;
  std::string help;
  std::vector<std::string> precisions;  // accepted HardwareTarget.precision values
  std::vector<LatencyOptionInfo> options;
};

// The process-wide registry (built-ins on first use). Tests and embedders may Add() more.
NameRegistry<LatencyRuntimeInfo>& LatencyRuntimes();

// runtime = kDefaultLatencyRuntime where unset.
void ApplyLatencyRuntimeDefaults(v1::HardwareTarget* target);

// The value of option `name` for `target`: as given, else the runtime's default ("" if the
// runtime has no such option).
std::string LatencyOption(const v1::HardwareTarget& target, const std::string& name);

// The target's runtime is registered, its precision is one of the runtime's, every option is
// one the runtime defines with an accepted value. INVALID_ARGUMENT naming `path`.runtime /
// .precision / .options[NAME].
absl::Status ValidateLatencyRuntime(const v1::HardwareTarget& target, const std::string& path);

// The measurement setting as one canonical string:
// "batch=B;precision=P;runtime=R;threads=T" then ";o.NAME=VALUE" per option not at its default,
// sorted by name. Part of the cache key and the stores' key column (schema 6): a new runtime or
// option needs no migration, and an option spelt out at its default is the same setting.
std::string LatencySetting(const v1::HardwareTarget& target);
std::string LatencySetting(const v1::LatencyMeasurement& m);

// Whether worker `w` (as registered) measures `target`: it measures latency, is of the target's
// profile (and thread count, if the target names one), and runs the target's runtime (a worker
// that registered no runtimes runs "libtorch").
bool MeasuresTarget(const v1::Worker& w, const v1::HardwareTarget& target);

// "profile 'cpu-8t' with 8 threads and runtime libtorch-cuda-graph": who can measure it.
std::string MeasurerDescription(const v1::HardwareTarget& target);

}  // namespace nasforge
