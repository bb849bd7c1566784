// Search-space model, the same for every kind (MBConv, ResNet, ConvNeXt, NAS-Bench-201 cell,
// MLP): validation (errors name the field), the decision vector ("genes": one choice index per
// decision) that sampling, mutation, crossover and encodings for strategies work on, the
// canonical encoding of an architecture and its stable hash (dedupe within a job).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "nasforge/v1/nasforge.pb.h"

namespace nasforge {

// Checks every choice list of `space`. `path` prefixes field names in errors
// (e.g. "search_space" -> "search_space.mbconv.stages[2].kernel: 4 is not odd").
absl::Status ValidateSearchSpace(const v1::SearchSpace& space, absl::string_view path);

// Checks a concrete architecture (what a worker is asked to build).
absl::Status ValidateArchitecture(const v1::Architecture& arch, absl::string_view path);

// Checks that `arch` is valid and one of the architectures of `space`.
absl::Status CheckInSpace(const v1::SearchSpace& space, const v1::Architecture& arch,
                          absl::string_view path);

// One decision of a space: its name (a field path) and how many choices it has.
struct Decision {
  std::string name;
  int choices = 1;
  // The choices are ordered (a hyperparameter's numbers, core/parameters.h): mutation moves to
  // neighbours and models measure distances. Unordered: categories.
  bool ordered = false;
  // Each choice's value as text ("5", "nor_conv_3x3"): what a parameter's condition on this
  // decision names (core/parameters.h). Empty for a hyperparameter's decision.
  std::vector<std::string> labels;
};
using Genes = std::vector<int>;

// REQUIRES for everything below taking a space: ValidateSearchSpace(space).ok().
std::vector<Decision> SpaceDecisions(const v1::SearchSpace& space);
v1::Architecture DecodeArchitecture(const v1::SearchSpace& space, const Genes& genes);
// The architecture choices `kind_genes` (the kind's genes, without the parameters') make, as
// parameters' conditions read them (core/parameters.h); empty when no condition names one.
std::map<std::string, std::string> ChoicesOf(const v1::SearchSpace& space, const Genes& kind_genes);
// nullopt if `arch` is not in `space`.
std::optional<Genes> EncodeArchitecture(const v1::SearchSpace& space, const v1::Architecture& arch);

// The genes of DecodeArchitecture(space, genes) -- decisions that do not change the
// architecture (an MLP layer beyond its depth) set to 0 -- without hashing: equal architectures,
// equal canonical genes.
Genes CanonicalGenes(const v1::SearchSpace& space, const Genes& genes);

// A deterministic sample: the same (space, seed) always gives the same architecture.
v1::Architecture SampleArchitecture(const v1::SearchSpace& space, uint64_t seed);
Genes SampleGenes(const v1::SearchSpace& space, std::mt19937_64& rng);

// Changes one decision that has more than one choice to another choice, retrying until the
// decoded architecture differs from the parent's (up to 32 tries; spaces with a single
// architecture return the parent).
Genes MutateGenes(const v1::SearchSpace& space, const Genes& parent, std::mt19937_64& rng);
// Uniform crossover: each decision from either parent with probability 1/2.
Genes CrossoverGenes(const Genes& a, const Genes& b, std::mt19937_64& rng);

// Number of distinct architectures in the space (saturates at UINT64_MAX).
uint64_t SpaceSize(const v1::SearchSpace& space);

// Canonical text encoding: equal architectures give equal strings, independent of proto
// serialization details (field order, default values, float formatting).
std::string CanonicalEncoding(const v1::Architecture& arch);
// The reference for CanonicalEncoding: protobuf's JSON printer on an already normalized
// architecture (tests compare the two).
std::string ProtobufCanonicalEncoding(const v1::Architecture& normalized);

// Stable 64-bit FNV-1a hash of the canonical encoding, as 16 hex digits.
std::string ArchHash(const v1::Architecture& arch);

// The architecture with defaults filled in (what workers build and stores keep).
v1::Architecture NormalizedArchitecture(const v1::Architecture& arch);

// Input shape the architecture expects: {channels, height, width}; an MLP gives
// {in_features, 1, 1}.
// A kind's input: images [channels, height, width], or flat features (flat: `channels`
// features, no height or width: an MLP's).
struct InputShape {
  int channels = 1, height = 1, width = 1;
  int num_classes = 0;
  bool flat = false;
};
InputShape ArchInputShape(const v1::Architecture& arch);
// Whether compound scaling can grow `arch` (its kind has depths, widths and a resolution).
bool Scalable(const v1::Architecture& arch);
// The key of `arch` in a benchmark table (NAS-Bench-201's arch_str); "" if its kind has no
// tables. HasTables: whether the space's kind has them (tabular workers answer its jobs).
std::string TableKey(const v1::Architecture& arch);
bool HasTables(const v1::SearchSpace& space);
// The same for every architecture of a space.
InputShape SpaceInputShape(const v1::SearchSpace& space);

// Sets the input resolution (e.g. `nasforge cost --resolution 320`); MLPs have none.
absl::Status SetResolution(v1::Architecture* arch, int resolution);

// Kind name of a space / an architecture ("mbconv", "resnet", ...), "" when unset.
// A short one-line summary of the architecture for tables ("" without a kind).
std::string ArchSummary(const v1::Architecture& arch);

std::string KindName(const v1::SearchSpace& space);
std::string KindName(const v1::Architecture& arch);

// Mixes a job seed with a counter into an independent 64-bit seed (splitmix64).
uint64_t MixSeed(uint64_t seed, uint64_t counter);

}  // namespace nasforge
