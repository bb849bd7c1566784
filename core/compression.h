// Compression recipes of a job (JobSpec.compression, issue #30): their defaults, their
// validation, and which kind of variant each makes. A variant trial (Trial.variant) carries its
// recipe; workers register the kinds they make (RegisterWorkerRequest.compression).
#pragma once

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "nasforge/v1/nasforge.pb.h"

namespace nasforge {

// The kind a recipe makes ("int8"), "" for none.
std::string CompressionKind(const v1::CompressionRecipe& recipe);

// Names and settings filled in: name = kind, int8 calibration_batches 8, tolerance 1.0.
void ApplyCompressionDefaults(v1::Compression* compression);

// INVALID_ARGUMENT naming the field (under `path`, e.g. "compression"): a recipe without a kind,
// a name that is not 1-32 of [a-z0-9_-] or not unique, settings out of range, more than 8
// recipes, or a dataset whose workers keep no trained weights (tabular, external).
absl::Status ValidateCompression(const v1::Compression& compression, absl::string_view dataset,
                                 absl::string_view path);

}  // namespace nasforge
