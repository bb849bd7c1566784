// Job specs: YAML -> JSON -> protobuf's JSON parser (so errors name the field), then semantic
// validation with field paths, then defaults.
#pragma once

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "nasforge/v1/nasforge.pb.h"

namespace nasforge {

// Parses YAML (or JSON, a YAML subset) onto `Message`. Unknown fields and wrong types are
// INVALID_ARGUMENT errors naming the field.
absl::Status YamlToMessage(absl::string_view yaml, google::protobuf::Message* message);

// The message as block YAML (protobuf field names), readable back by YamlToMessage.
std::string MessageToYaml(const google::protobuf::Message& message);

// Parses and validates a job spec and fills defaults.
absl::StatusOr<v1::JobSpec> ParseJobSpecYaml(absl::string_view yaml);

// Semantic checks with field paths ("budget.max_trials: must be >= 1"). Call after defaults.
absl::Status ValidateJobSpec(const v1::JobSpec& spec);

// Fills documented defaults (max_parallel_trials 2, max_attempts 3, epochs 1, strategy random,
// objectives accuracy:max + macs:min, batch size 128, learning rate 0.002, lease 60 s, ...).
void ApplyJobSpecDefaults(v1::JobSpec* spec);

}  // namespace nasforge
