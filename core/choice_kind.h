// A search-space kind registered in code by a program that embeds nasforge (a test, a product
// of its own): its space is a list of named integer choices (SearchSpace.custom), its
// architecture one value per choice (Architecture.custom). ChoiceKind does what is the same
// for every such kind (validation with field paths, genes, decoding, encoding, summaries);
// the subclass says which choices it needs, its input and its layer plan. Register the kind
// with RegisterChoiceKind (core) and its LibTorch builder with TorchBuilders()
// (worker/torch_models.h); docs/EXTENDING.md, "a search-space kind", walks through it.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "core/space_kind.h"
#include "nasforge/v1/nasforge.pb.h"

namespace nasforge {

// One choice a custom kind needs: its name and the range its values must lie in.
struct ChoiceSpec {
  std::string name;
  int32_t min = 0;
  int32_t max = 0;
};

class ChoiceKind : public SpaceKind {
 public:
  explicit ChoiceKind(std::string name) : name_(std::move(name)) {}
  std::string name() const final { return name_; }
  bool Custom() const final { return true; }
  // The choices a space of this kind must give (and no others), with their ranges.
  virtual std::vector<ChoiceSpec> Choices() const = 0;

  absl::Status ValidateSpace(const v1::SearchSpace& space, const std::string& p) const final;
  absl::Status ValidateArch(const v1::Architecture& arch, const std::string& p) const final;
  void Normalize(v1::Architecture* arch) const final;
  std::vector<Decision> Decisions(const v1::SearchSpace& space) const final;
  v1::Architecture Decode(const v1::SearchSpace& space, const Genes& genes) const final;
  std::optional<Genes> Encode(const v1::SearchSpace& space,
                              const v1::Architecture& arch) const final;
  absl::Status SetResolution(v1::Architecture* arch, int resolution) const override;
  void Scale(v1::Architecture*, const ScaleMaps&) const override {}
  bool Scalable() const override { return false; }
  std::string Summary(const v1::Architecture& arch) const override;

  // The value of choice `name` in a validated architecture of this kind.
  static int32_t Value(const v1::Architecture& arch, const std::string& name);

 private:
  std::string name_;
};

// Adds `kind` to SpaceKinds() for the life of the process. INVALID_ARGUMENT when its name is
// taken or is not a lower-case identifier.
absl::Status RegisterChoiceKind(std::shared_ptr<const ChoiceKind> kind);

}  // namespace nasforge
