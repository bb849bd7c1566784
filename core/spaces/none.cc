// The kind of a space of parameters only (SearchSpace.parameters without an architecture kind):
// a pure hyperparameter search. Its architecture part is empty; the candidate is its values.
#include <cstdint>
#include <string>

#include "core/space_kind.h"

namespace nasforge {
namespace {

class NoArch final : public SpaceKind {
 public:
  std::string name() const override { return "none"; }
  absl::Status ValidateSpace(const v1::SearchSpace&, const std::string&) const override {
    return absl::OkStatus();
  }
  absl::Status ValidateArch(const v1::Architecture&, const std::string&) const override {
    return absl::OkStatus();
  }
  void Normalize(v1::Architecture*) const override {}
  std::vector<Decision> Decisions(const v1::SearchSpace&) const override { return {}; }
  v1::Architecture Decode(const v1::SearchSpace&, const Genes&) const override { return {}; }
  std::optional<Genes> Encode(const v1::SearchSpace&, const v1::Architecture&) const override {
    return Genes{};
  }
  uint64_t Size(const v1::SearchSpace&) const override { return 1; }
  void Plan(const v1::Architecture&, Planner*) const override {}
  absl::Status SetResolution(v1::Architecture*, int) const override {
    return FieldError("resolution", "a space of parameters only has no architecture");
  }
  // No network: nothing to feed. Workers that answer such jobs (tables, external trainers) do
  // not read it.
  InputShape Input(const v1::Architecture&) const override { return {0, 0, 0, 0, true}; }
  void Scale(v1::Architecture*, const ScaleMaps&) const override {}
  std::string Summary(const v1::Architecture&) const override { return ""; }
  bool Scalable() const override { return false; }
};

}  // namespace

const SpaceKind& NoArchKind() {
  static const NoArch k;
  return k;
}

}  // namespace nasforge
