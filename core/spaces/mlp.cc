// Multilayer perceptron for tabular data: hidden linear layers (optional BatchNorm1d), an
// activation and dropout after each, then a linear classifier. Images are flattened.
#include <cstdint>
#include <string>

#include "core/space_kind.h"

namespace nasforge {
namespace {

const std::vector<std::string> kActivations = {"relu", "gelu", "silu"};

class MLP final : public SpaceKind {
 public:
  std::string name() const override { return "mlp"; }
  absl::Status ValidateSpace(const v1::SearchSpace& space, const std::string& p) const override {
    const auto& s = space.mlp();
    NF_RETURN_IF_ERROR(CheckRange(s.in_features(), p + ".in_features", 1, 1 << 20));
    NF_RETURN_IF_ERROR(CheckRange(s.num_classes(), p + ".num_classes", 2, 100000));
    NF_RETURN_IF_ERROR(CheckChoices(s.depth(), p + ".depth", 0, 32));
    int max_depth = 0;
    for (int d : s.depth()) max_depth = std::max(max_depth, d);
    if (s.layers_size() < max_depth) {
      return FieldError(p + ".layers", absl::StrCat("has ", s.layers_size(),
                                                    " entries but depth allows ", max_depth));
    }
    for (int i = 0; i < s.layers_size(); ++i) {
      NF_RETURN_IF_ERROR(
          CheckChoices(s.layers(i).units(), absl::StrCat(p, ".layers[", i, "].units"), 1, 65536));
    }
    if (!s.activation().empty()) {
      NF_RETURN_IF_ERROR(CheckName(s.activation(), p + ".activation", kActivations));
    }
    if (s.dropout() < 0 || s.dropout() >= 1) {
      return FieldError(p + ".dropout", absl::StrCat(s.dropout(), " is out of range [0, 1)"));
    }
    return absl::OkStatus();
  }

  absl::Status ValidateArch(const v1::Architecture& arch, const std::string& p) const override {
    const auto& a = arch.mlp();
    NF_RETURN_IF_ERROR(CheckRange(a.in_features(), p + ".in_features", 1, 1 << 20));
    NF_RETURN_IF_ERROR(CheckRange(a.num_classes(), p + ".num_classes", 2, 100000));
    for (int i = 0; i < a.units_size(); ++i) {
      NF_RETURN_IF_ERROR(CheckRange(a.units(i), absl::StrCat(p, ".units[", i, "]"), 1, 65536));
    }
    if (!a.activation().empty()) {
      NF_RETURN_IF_ERROR(CheckName(a.activation(), p + ".activation", kActivations));
    }
    if (a.dropout() < 0 || a.dropout() >= 1) {
      return FieldError(p + ".dropout", absl::StrCat(a.dropout(), " is out of range [0, 1)"));
    }
    return absl::OkStatus();
  }

  void Normalize(v1::Architecture* arch) const override {
    if (arch->mlp().activation().empty()) arch->mutable_mlp()->set_activation("relu");
  }

  std::vector<Decision> Decisions(const v1::SearchSpace& space) const override {
    const auto& s = space.mlp();
    std::vector<Decision> d;
    AddDecision(&d, "depth", s.depth_size(), s.depth());
    for (int i = 0; i < s.layers_size(); ++i) {
      AddDecision(&d, absl::StrCat("layers[", i, "].units"), s.layers(i).units_size(),
                  s.layers(i).units());
    }
    return d;
  }

  // Layers beyond the depth do not exist: count each architecture once.
  uint64_t Size(const v1::SearchSpace& space) const override {
    const auto& s = space.mlp();
    uint64_t total = 0;
    for (int depth : s.depth()) {
      uint64_t n = 1;
      for (int i = 0; i < depth; ++i) n = SatMul(n, s.layers(i).units_size());
      total = total > UINT64_MAX - n ? UINT64_MAX : total + n;
    }
    return total;
  }

  v1::Architecture Decode(const v1::SearchSpace& space, const Genes& g) const override {
    const auto& s = space.mlp();
    v1::Architecture arch;
    auto* a = arch.mutable_mlp();
    a->set_in_features(s.in_features());
    a->set_num_classes(s.num_classes());
    int depth = s.depth(g[0]);
    for (int i = 0; i < depth; ++i) a->add_units(s.layers(i).units(g[1 + i]));
    a->set_activation(s.activation().empty() ? "relu" : s.activation());
    a->set_dropout(s.dropout());
    a->set_batch_norm(s.batch_norm());
    return arch;
  }

  std::optional<Genes> Encode(const v1::SearchSpace& space,
                              const v1::Architecture& arch) const override {
    const auto& s = space.mlp();
    const auto& a = arch.mlp();
    Genes g(1 + s.layers_size(), 0);
    g[0] = IndexOf(s.depth(), a.units_size());
    if (g[0] < 0 || a.units_size() > s.layers_size()) return std::nullopt;
    for (int i = 0; i < a.units_size(); ++i) {
      g[1 + i] = IndexOf(s.layers(i).units(), a.units(i));
      if (g[1 + i] < 0) return std::nullopt;
    }
    return g;
  }

  void Plan(const v1::Architecture& arch, Planner* p) const override {
    const auto& a = arch.mlp();
    int c = a.in_features();
    for (int i = 0; i < a.units_size(); ++i) {
      p->Linear(absl::StrCat("hidden.", i), c, a.units(i));
      if (a.batch_norm()) p->BatchNorm(absl::StrCat("hidden.", i, ".bn"), a.units(i), 1);
      c = a.units(i);
    }
    p->Linear("classifier", c, a.num_classes());
  }

  absl::Status SetResolution(v1::Architecture*, int) const override {
    return FieldError("resolution", "an MLP has no input resolution");
  }
  void Scale(v1::Architecture* arch, const ScaleMaps& s) const override {
    for (auto& u : *arch->mutable_mlp()->mutable_units()) u = s.width(u);
  }
  std::string Summary(const v1::Architecture& a) const override {
    std::string out = "mlp";
    for (int u : a.mlp().units()) absl::StrAppend(&out, "-", u);
    return out;
  }
  InputShape Input(const v1::Architecture& arch) const override {
    return {arch.mlp().in_features(), 1, 1, arch.mlp().num_classes(), /*flat=*/true};
  }
  bool Scalable() const override { return false; }
  bool Prunable() const override { return true; }
};

}  // namespace

const SpaceKind& MLPKind() {
  static const MLP k;
  return k;
}

}  // namespace nasforge
