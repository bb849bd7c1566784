// ConvNeXt family (torchvision layout): patchify stem (kxk stride-k conv with bias, LayerNorm),
// stages of blocks [depthwise kxk conv with bias, LayerNorm, linear C->rC, GELU, linear rC->C,
// layer scale, residual], LayerNorm + 2x2 stride-2 conv between stages, then pooling, LayerNorm
// and a linear classifier.
#include <cstdint>
#include <string>

#include "core/space_kind.h"

namespace nasforge {
namespace {

class ConvNeXt final : public SpaceKind {
 public:
  std::string name() const override { return "convnext"; }
  absl::Status ValidateSpace(const v1::SearchSpace& space, const std::string& p) const override {
    const auto& s = space.convnext();
    NF_RETURN_IF_ERROR(CheckRange(s.resolution(), p + ".resolution", 8, 1024));
    NF_RETURN_IF_ERROR(CheckRange(s.in_channels(), p + ".in_channels", 1, 16));
    NF_RETURN_IF_ERROR(CheckRange(s.num_classes(), p + ".num_classes", 2, 100000));
    NF_RETURN_IF_ERROR(CheckChoices(s.patch_size(), p + ".patch_size", 1, 16));
    if (!s.kernel().empty()) {
      NF_RETURN_IF_ERROR(CheckChoices(s.kernel(), p + ".kernel", 1, 15, /*must_be_odd=*/true));
    }
    if (!s.mlp_ratio().empty()) {
      NF_RETURN_IF_ERROR(CheckChoices(s.mlp_ratio(), p + ".mlp_ratio", 1, 8));
    }
    if (s.stages().empty()) return FieldError(p + ".stages", "needs at least one stage");
    if (s.stages_size() > 6) return FieldError(p + ".stages", "at most 6 stages");
    for (int i = 0; i < s.stages_size(); ++i) {
      std::string sp = absl::StrCat(p, ".stages[", i, "]");
      NF_RETURN_IF_ERROR(CheckChoices(s.stages(i).depth(), sp + ".depth", 1, 64));
      NF_RETURN_IF_ERROR(CheckChoices(s.stages(i).channels(), sp + ".channels", 1, 4096));
    }
    for (int patch : s.patch_size()) {
      NF_RETURN_IF_ERROR(CheckSizes(s.resolution(), patch, s.stages_size(), p));
    }
    return absl::OkStatus();
  }

  absl::Status ValidateArch(const v1::Architecture& arch, const std::string& p) const override {
    const auto& a = arch.convnext();
    NF_RETURN_IF_ERROR(CheckRange(a.resolution(), p + ".resolution", 8, 4096));
    NF_RETURN_IF_ERROR(CheckRange(a.in_channels(), p + ".in_channels", 1, 16));
    NF_RETURN_IF_ERROR(CheckRange(a.num_classes(), p + ".num_classes", 2, 100000));
    NF_RETURN_IF_ERROR(CheckRange(a.patch_size(), p + ".patch_size", 1, 16));
    if (a.kernel() != 0 && (a.kernel() < 1 || a.kernel() > 15 || a.kernel() % 2 == 0)) {
      return FieldError(p + ".kernel", absl::StrCat(a.kernel(), " is not an odd size in [1, 15]"));
    }
    NF_RETURN_IF_ERROR(CheckRange(a.mlp_ratio(), p + ".mlp_ratio", 0, 8));
    if (a.stages().empty()) return FieldError(p + ".stages", "needs at least one stage");
    for (int i = 0; i < a.stages_size(); ++i) {
      std::string sp = absl::StrCat(p, ".stages[", i, "]");
      NF_RETURN_IF_ERROR(CheckRange(a.stages(i).depth(), sp + ".depth", 1, 256));
      NF_RETURN_IF_ERROR(CheckRange(a.stages(i).channels(), sp + ".channels", 1, 8192));
    }
    return CheckSizes(a.resolution(), a.patch_size(), a.stages_size(), p);
  }

  void Normalize(v1::Architecture* arch) const override {
    auto* a = arch->mutable_convnext();
    if (a->kernel() == 0) a->set_kernel(7);
    if (a->mlp_ratio() == 0) a->set_mlp_ratio(4);
    if (a->layer_scale() == 0) a->set_layer_scale(1e-6);
    if (a->layer_scale() < 0) a->set_layer_scale(-1);
  }

  std::vector<Decision> Decisions(const v1::SearchSpace& space) const override {
    const auto& s = space.convnext();
    std::vector<Decision> d;
    AddDecision(&d, "patch_size", s.patch_size_size(), s.patch_size());
    AddDecision(&d, "kernel", std::max(1, s.kernel_size()), s.kernel(), "7");
    AddDecision(&d, "mlp_ratio", std::max(1, s.mlp_ratio_size()), s.mlp_ratio(), "4");
    for (int i = 0; i < s.stages_size(); ++i) {
      AddDecision(&d, absl::StrCat("stages[", i, "].depth"), s.stages(i).depth_size(),
                  s.stages(i).depth());
      AddDecision(&d, absl::StrCat("stages[", i, "].channels"), s.stages(i).channels_size(),
                  s.stages(i).channels());
    }
    return d;
  }

  v1::Architecture Decode(const v1::SearchSpace& space, const Genes& g) const override {
    const auto& s = space.convnext();
    v1::Architecture arch;
    auto* a = arch.mutable_convnext();
    size_t i = 0;
    a->set_resolution(s.resolution());
    a->set_in_channels(s.in_channels());
    a->set_num_classes(s.num_classes());
    a->set_patch_size(s.patch_size(g[i++]));
    int k = g[i++], r = g[i++];
    a->set_kernel(s.kernel().empty() ? 7 : s.kernel(k));
    a->set_mlp_ratio(s.mlp_ratio().empty() ? 4 : s.mlp_ratio(r));
    a->set_layer_scale(s.layer_scale());
    for (const auto& st : s.stages()) {
      auto* o = a->add_stages();
      o->set_depth(st.depth(g[i++]));
      o->set_channels(st.channels(g[i++]));
    }
    Normalize(&arch);
    return arch;
  }

  std::optional<Genes> Encode(const v1::SearchSpace& space,
                              const v1::Architecture& arch) const override {
    const auto& s = space.convnext();
    const auto& a = arch.convnext();
    if (a.stages_size() != s.stages_size()) return std::nullopt;
    Genes g = {IndexOf(s.patch_size(), a.patch_size()),
               s.kernel().empty() ? 0 : IndexOf(s.kernel(), a.kernel()),
               s.mlp_ratio().empty() ? 0 : IndexOf(s.mlp_ratio(), a.mlp_ratio())};
    for (int i = 0; i < s.stages_size(); ++i) {
      g.push_back(IndexOf(s.stages(i).depth(), a.stages(i).depth()));
      g.push_back(IndexOf(s.stages(i).channels(), a.stages(i).channels()));
    }
    for (int x : g) {
      if (x < 0) return std::nullopt;
    }
    return g;
  }

  void Plan(const v1::Architecture& arch, Planner* p) const override {
    v1::Architecture n = arch;
    Normalize(&n);
    const auto& a = n.convnext();
    int c = a.stages(0).channels();
    int size = p->Conv("stem.conv", a.in_channels(), c, a.patch_size(), a.patch_size(), 0, 1, true,
                       a.resolution());
    p->LayerNorm("stem.ln", c);
    for (int s = 0; s < a.stages_size(); ++s) {
      const auto& st = a.stages(s);
      if (s > 0) {
        p->LayerNorm(absl::StrCat("downsample.", s, ".ln"), c);
        size = p->Conv(absl::StrCat("downsample.", s, ".conv"), c, st.channels(), 2, 2, 0, 1, true,
                       size);
        c = st.channels();
      }
      const int64_t pixels = int64_t{size} * size;
      for (int b = 0; b < st.depth(); ++b) {
        std::string pre = absl::StrCat("stages.", s, ".", b, ".");
        p->Conv(pre + "dwconv", c, c, a.kernel(), 1, a.kernel() / 2, c, true, size);
        p->LayerNorm(pre + "ln", c);
        p->Linear(pre + "pwconv1", c, a.mlp_ratio() * c, true, pixels);
        p->Linear(pre + "pwconv2", a.mlp_ratio() * c, c, true, pixels);
        if (a.layer_scale() > 0) p->Param(pre + "layer_scale", c);
      }
    }
    p->LayerNorm("head.ln", c);
    p->Linear("head.fc", c, a.num_classes());
  }

  absl::Status SetResolution(v1::Architecture* arch, int r) const override {
    arch->mutable_convnext()->set_resolution(r);
    return absl::OkStatus();
  }
  void Scale(v1::Architecture* arch, const ScaleMaps& s) const override {
    auto* m = arch->mutable_convnext();
    for (auto& st : *m->mutable_stages()) {
      st.set_channels(s.width(st.channels()));
      st.set_depth(s.depth(st.depth()));
    }
    m->set_resolution(s.resolution(m->resolution()));
  }
  std::string Summary(const v1::Architecture& a) const override {
    const auto& c = a.convnext();
    std::string out = absl::StrCat("p", c.patch_size(), " k", c.kernel(), " r", c.mlp_ratio());
    for (const auto& st : c.stages()) absl::StrAppend(&out, " ", st.depth(), "x", st.channels());
    return out;
  }
  InputShape Input(const v1::Architecture& arch) const override {
    const auto& a = arch.convnext();
    return {a.in_channels(), a.resolution(), a.resolution(), a.num_classes()};
  }

 private:
  // The patchify stem and every 2x2 downsampling must leave at least one pixel.
  static absl::Status CheckSizes(int resolution, int patch, int stages, const std::string& p) {
    int size = resolution < patch ? 0 : ConvOutSize(resolution, patch, patch, 0);
    for (int s = 1; s < stages; ++s) size = size < 2 ? 0 : ConvOutSize(size, 2, 2, 0);
    if (size < 1) {
      return FieldError(p + ".resolution",
                        absl::StrCat(resolution, " is too small for patch size ", patch, " and ",
                                     stages, " stages (each after the first halves it)"));
    }
    return absl::OkStatus();
  }
  bool Prunable() const override { return true; }
};

}  // namespace

const SpaceKind& ConvNeXtKind() {
  static const ConvNeXt k;
  return k;
}

}  // namespace nasforge
