// Compression recipes of a job (JobSpec.compression, issue #30): their defaults, their
// validation, which kind of variant each makes, and the architecture a pruned variant has. A
// variant trial (Trial.variant) carries its recipe; workers register the kinds they make
// (RegisterWorkerRequest.compression).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "nasforge/v1/nasforge.pb.h"

namespace nasforge {

// The kind a recipe makes ("int8", "prune", "distill"), "" for none.
std::string CompressionKind(const v1::CompressionRecipe& recipe);

// Names and settings filled in: name = kind; int8 calibration_batches 8, tolerance 1.0; prune
// ratio 0.5, epochs a third of `job_epochs` (at least 1); distill alpha 0.5, temperature 4,
// epochs `job_epochs`, teacher "best".
void ApplyCompressionDefaults(v1::Compression* compression, int job_epochs);

// INVALID_ARGUMENT naming the field (under `path`, e.g. "compression"): a recipe without a kind,
// a name that is not 1-32 of [a-z0-9_-] or not unique, settings out of range, more than 8
// recipes, a dataset whose workers keep no trained weights (tabular, external), or pruning of
// a search space whose widths it cannot rewrite (a kind registered in code, no architecture).
absl::Status ValidateCompression(const v1::JobSpec& spec, absl::string_view path);

// Whether a variant made by `recipe` is a network of its own (pruned: its architecture, counts
// and fp32 latency are measured like any candidate's), not its parent's network run another way
// (int8: the parent's layers on an int8 engine). Distilled: the student's network.
bool VariantIsOwnNetwork(const v1::CompressionRecipe& recipe);

// The recipe of `compression` named `name`, nullptr if none.
const v1::CompressionRecipe* FindRecipe(const v1::Compression& compression,
                                        const std::string& name);

// A distill recipe's teacher when it names a trial id; nullopt for "best" (or an invalid one,
// which validation refuses).
std::optional<int64_t> NamedTeacher(const v1::DistillCompression& distill);

// The architecture of `arch` pruned at `ratio`: each width w (stem, stage and head channels,
// hidden units) becomes max(1, round(w * (1 - ratio))); depths, kernels and resolution stay.
// FAILED_PRECONDITION for a kind whose widths this cannot rewrite, or when rounding merges two
// widths so that the network's layers change (a shortcut conv that no longer exists).
absl::StatusOr<v1::Architecture> PrunedArchitecture(const v1::Architecture& arch, double ratio);

}  // namespace nasforge
