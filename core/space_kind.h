// One search-space kind (MBConv, ResNet, ConvNeXt, NAS-Bench-201 cell, MLP): how to validate
// its space and architecture messages, how an architecture maps to a vector of choice indices
// ("genes"), its layer plan for the analytic cost, how compound scaling grows it, and its
// one-line summary. search_space.cc builds sampling, mutation, crossover, hashing and sizes on
// top of this, the same for every kind; nothing outside a kind's file switches on kinds.
//
// Kinds are registered by name (SpaceKinds()). A built-in kind's name is the name of its field
// in the SearchSpace and Architecture oneofs: adding one is the two proto messages and oneof
// fields, its file in core/spaces/ with one line in search_space.cc's Builtins(), its LibTorch
// builder (one line in worker/torch_models.cc's table), and its test. A kind registered in code
// (core/choice_kind.h) needs no proto change: its spaces and architectures are the `custom`
// arm, which names it.
// Internal to core: users call search_space.h and cost.h.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "core/cost.h"
#include "core/parameters.h"
#include "core/registry.h"
#include "core/search_space.h"
#include "core/status.h"
#include "nasforge/v1/nasforge.pb.h"

namespace nasforge {

// Compound scaling's maps from a base value to its scaled value (core/scaling.h).
struct ScaleMaps {
  std::function<int(int)> depth;       // repeats, blocks, layers
  std::function<int(int)> width;       // channels, units (rounded to the divisor)
  std::function<int(int)> resolution;  // input side
};

class SpaceKind {
 public:
  virtual ~SpaceKind() = default;
  // The oneof field name in SearchSpace and Architecture ("mbconv"), or for a custom kind the
  // name its `custom.kind` gives.
  virtual std::string name() const = 0;
  // Registered in code: its messages are SearchSpace.custom / Architecture.custom.
  virtual bool Custom() const { return false; }
  virtual absl::Status ValidateSpace(const v1::SearchSpace& space, const std::string& p) const = 0;
  virtual absl::Status ValidateArch(const v1::Architecture& arch, const std::string& p) const = 0;
  // Fills defaults so that equal architectures have equal messages.
  virtual void Normalize(v1::Architecture* arch) const = 0;
  virtual std::vector<Decision> Decisions(const v1::SearchSpace& space) const = 0;
  // REQUIRES: genes[i] < Decisions(space)[i].choices.
  virtual v1::Architecture Decode(const v1::SearchSpace& space,
                                  const std::vector<int>& genes) const = 0;
  // nullopt if `arch` is not in `space`.
  virtual std::optional<std::vector<int>> Encode(const v1::SearchSpace& space,
                                                 const v1::Architecture& arch) const = 0;
  // Distinct architectures; default: the product of the choice counts.
  virtual uint64_t Size(const v1::SearchSpace& space) const;
  virtual void Plan(const v1::Architecture& arch, Planner* p) const = 0;
  // INVALID_ARGUMENT (field "resolution") for a kind without an input resolution.
  virtual absl::Status SetResolution(v1::Architecture* arch, int resolution) const = 0;
  virtual InputShape Input(const v1::Architecture& arch) const = 0;
  // Compound scaling of a normalized architecture (its depths, widths and resolution).
  virtual void Scale(v1::Architecture* arch, const ScaleMaps& s) const = 0;
  // A short summary for tables ("k3e6x2c24 k5e6x3c40se").
  virtual std::string Summary(const v1::Architecture& arch) const = 0;
  // Whether compound scaling applies (depths, widths, a resolution); Scale is not called
  // otherwise.
  virtual bool Scalable() const { return true; }
  // Structured pruning (core/compression.h PrunedArchitecture) rewrites this kind's widths
  // through Scale's width map, and the worker has a channel plan for its built network.
  virtual bool Prunable() const { return false; }
  // Whether a residual or shortcut depends on two widths being equal (MBConv's residual when a
  // block keeps its width, ResNet's shortcut conv when it changes): then pruning must not round
  // two different widths to the same one.
  virtual bool ResidualsFollowWidths() const { return false; }
  // Benchmark tables answer this kind's architectures (tabular workers, `nasforge bench`):
  // HasTables, and an architecture's key in them (the table's key column).
  virtual bool HasTables() const { return false; }
  virtual std::string TableKey(const v1::Architecture& arch) const { return ""; }
};

struct SpaceKindEntry {
  std::string name;  // == kind->name()
  const SpaceKind* kind = nullptr;
  std::shared_ptr<const SpaceKind> owned;  // for kinds registered at run time
};
using SpaceKindRegistry = NameRegistry<SpaceKindEntry>;

// The process-wide registry, holding the built-in kinds.
SpaceKindRegistry& SpaceKinds();

// The kind of a space / an architecture; nullptr when the oneof is unset or names no
// registered kind.
const SpaceKind* KindOf(const v1::SearchSpace& space);
const SpaceKind* KindOf(const v1::Architecture& arch);

const SpaceKind& MBConvKind();
const SpaceKind& ResNetKind();
const SpaceKind& ConvNeXtKind();
const SpaceKind& NB201Kind();
const SpaceKind& MLPKind();
// A space of parameters only (no architecture kind set); not in the registry.
const SpaceKind& NoArchKind();

// --- helpers shared by the kinds -------------------------------------------------------------

uint64_t SatMul(uint64_t a, uint64_t b);

template <typename T>
absl::Status CheckChoices(const google::protobuf::RepeatedField<T>& values, absl::string_view path,
                          T lo, T hi, bool must_be_odd = false) {
  if (values.empty()) return FieldError(path, "needs at least one choice");
  for (int i = 0; i < values.size(); ++i) {
    T v = values[i];
    if (v < lo || v > hi) {
      return FieldError(path, absl::StrCat(v, " is out of range [", lo, ", ", hi, "]"));
    }
    if constexpr (std::is_integral_v<T>) {
      if (must_be_odd && v % 2 == 0) return FieldError(path, absl::StrCat(v, " is not odd"));
    }
    for (int j = 0; j < i; ++j) {
      if (values[j] == v) return FieldError(path, absl::StrCat(v, " is listed twice"));
    }
  }
  return absl::OkStatus();
}

// Each value must be one of `allowed`; no repeats; at least one.
absl::Status CheckNames(const google::protobuf::RepeatedPtrField<std::string>& values,
                        absl::string_view path, const std::vector<std::string>& allowed);
absl::Status CheckName(const std::string& value, absl::string_view path,
                       const std::vector<std::string>& allowed);
absl::Status CheckRange(int64_t v, absl::string_view path, int64_t lo, int64_t hi);
// A lower-case identifier: letters, digits and '_', a letter first (kind and parameter names).
bool IsLowerIdentifier(absl::string_view s);

// Index of `v` in `choices`, or -1. A one-element list matches any value equal to it.
template <typename C, typename T>
int IndexOf(const C& choices, const T& v) {
  for (int i = 0; i < static_cast<int>(choices.size()); ++i) {
    if (choices[i] == v) return i;
  }
  return -1;
}

// Appends a decision to `d`: its name, number of choices and their values (labels); a list the
// space leaves empty is the one choice `fallback` (the kind's default).
template <typename C>
void AddDecision(std::vector<Decision>* d, std::string name, int choices, const C& values,
                 const std::string& fallback = "") {
  Decision x{std::move(name), choices};
  for (const auto& v : values) {
    if constexpr (std::is_arithmetic_v<std::decay_t<decltype(v)>>) {
      x.labels.push_back(FormatNumber(static_cast<double>(v)));
    } else {
      x.labels.push_back(std::string(v));
    }
  }
  if (x.labels.empty()) x.labels.push_back(fallback);
  d->push_back(std::move(x));
}

}  // namespace nasforge
