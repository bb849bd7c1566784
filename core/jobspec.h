// Job specs: YAML -> JSON -> protobuf's JSON parser (so errors name the field), then semantic
// validation with field paths, then defaults.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/finite.h"
#include "nasforge/v1/nasforge.pb.h"

namespace nasforge {

// Bounds on what a job spec may cost to read: its size (YAML text or encoded protobuf), the YAML
// nodes it expands to (aliases counted each time they are used) and its nesting depth.
inline constexpr size_t kMaxSpecBytes = 1 << 20;
inline constexpr int64_t kMaxSpecNodes = 100'000;
inline constexpr int kMaxSpecDepth = 64;

// Parses YAML (or JSON, a YAML subset) onto `Message`. Unknown fields, wrong types, duplicate
// keys, NaN/infinite numbers and documents over the bounds above are INVALID_ARGUMENT errors
// naming the field (or the YAML line).
absl::Status YamlToMessage(absl::string_view yaml, google::protobuf::Message* message);

// The message as block YAML (protobuf field names), readable back by YamlToMessage.
std::string MessageToYaml(const google::protobuf::Message& message);

// Parses and validates a job spec and fills defaults.
absl::StatusOr<v1::JobSpec> ParseJobSpecYaml(absl::string_view yaml);

// Semantic checks with field paths ("budget.max_trials: must be >= 1"). Call after defaults.
absl::Status ValidateJobSpec(const v1::JobSpec& spec);

// A job's labels (JobSpec.labels): at most 32; keys of 1-63 characters [A-Za-z0-9._/-], values
// of at most 256. INVALID_ARGUMENT names `path`[key].
absl::Status ValidateLabels(const google::protobuf::Map<std::string, std::string>& labels,
                            absl::string_view path);

// Fills documented defaults (max_parallel_trials 2, max_attempts 3, epochs 1, strategy random,
// objectives accuracy:max + macs:min, batch size 128, learning rate 0.002, lease 60 s, ...).
void ApplyJobSpecDefaults(v1::JobSpec* spec);

}  // namespace nasforge
