// Search-space model: validation (errors name the field), seeded sampling, the canonical
// encoding of an architecture and its stable hash (dedupe within a job).
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "nasforge/v1/nasforge.pb.h"

namespace nasforge {

// Checks every choice list of `space`. `path` prefixes field names in errors
// (e.g. "search_space" -> "search_space.mbconv.stages[2].kernel: 4 is not odd").
absl::Status ValidateSearchSpace(const v1::SearchSpace& space, absl::string_view path);

// Checks a concrete architecture (what a worker is asked to build).
absl::Status ValidateArchitecture(const v1::Architecture& arch, absl::string_view path);

// A deterministic sample: the same (space, seed) always gives the same architecture.
// REQUIRES: ValidateSearchSpace(space).ok().
v1::Architecture SampleArchitecture(const v1::SearchSpace& space, uint64_t seed);

// Number of distinct architectures in the space (saturates at UINT64_MAX).
uint64_t SpaceSize(const v1::SearchSpace& space);

// Canonical text encoding: equal architectures give equal strings, independent of proto
// serialization details (field order, default values, float formatting).
std::string CanonicalEncoding(const v1::Architecture& arch);

// Stable 64-bit FNV-1a hash of the canonical encoding, as 16 hex digits.
std::string ArchHash(const v1::Architecture& arch);

// Mixes a job seed with a counter into an independent 64-bit seed (splitmix64).
uint64_t MixSeed(uint64_t seed, uint64_t counter);

}  // namespace nasforge
