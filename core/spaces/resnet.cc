// ResNet family in torchvision's layout: stem kxk conv + BN + ReLU (+ 3x3/2 max pool), stages of
// basic (3x3, 3x3) or bottleneck (1x1, 3x3 with the stride, 1x1 to 4x width) blocks with a
// 1x1 conv + BN shortcut when the shape changes, global pooling, linear classifier.
#include <string>

#include "core/space_kind.h"

namespace nasforge {
namespace {

const std::vector<std::string> kBlocks = {"basic", "bottleneck"};

int Expansion(const std::string& block) { return block == "bottleneck" ? 4 : 1; }

class ResNet final : public SpaceKind {
 public:
  std::string name() const override { return "resnet"; }
  absl::Status ValidateSpace(const v1::SearchSpace& space, const std::string& p) const override {
    const auto& s = space.resnet();
    NF_RETURN_IF_ERROR(CheckRange(s.resolution(), p + ".resolution", 8, 1024));
    NF_RETURN_IF_ERROR(CheckRange(s.in_channels(), p + ".in_channels", 1, 16));
    NF_RETURN_IF_ERROR(CheckRange(s.num_classes(), p + ".num_classes", 2, 100000));
    NF_RETURN_IF_ERROR(CheckNames(s.block(), p + ".block", kBlocks));
    NF_RETURN_IF_ERROR(CheckChoices(s.stem_channels(), p + ".stem_channels", 1, 4096));
    NF_RETURN_IF_ERROR(CheckStem(s.stem_kernel(), s.stem_stride(), p));
    if (s.stages().empty()) return FieldError(p + ".stages", "needs at least one stage");
    if (s.stages_size() > 8) return FieldError(p + ".stages", "at most 8 stages");
    for (int i = 0; i < s.stages_size(); ++i) {
      const auto& st = s.stages(i);
      std::string sp = absl::StrCat(p, ".stages[", i, "]");
      NF_RETURN_IF_ERROR(CheckChoices(st.blocks(), sp + ".blocks", 1, 64));
      NF_RETURN_IF_ERROR(CheckChoices(st.channels(), sp + ".channels", 1, 4096));
      if (st.stride() != 1 && st.stride() != 2) {
        return FieldError(sp + ".stride", absl::StrCat(st.stride(), " is not 1 or 2"));
      }
    }
    return absl::OkStatus();
  }

  absl::Status ValidateArch(const v1::Architecture& arch, const std::string& p) const override {
    const auto& a = arch.resnet();
    NF_RETURN_IF_ERROR(CheckRange(a.resolution(), p + ".resolution", 8, 4096));
    NF_RETURN_IF_ERROR(CheckRange(a.in_channels(), p + ".in_channels", 1, 16));
    NF_RETURN_IF_ERROR(CheckRange(a.num_classes(), p + ".num_classes", 2, 100000));
    NF_RETURN_IF_ERROR(CheckName(a.block(), p + ".block", kBlocks));
    NF_RETURN_IF_ERROR(CheckRange(a.stem_channels(), p + ".stem_channels", 1, 8192));
    NF_RETURN_IF_ERROR(CheckStem(a.stem_kernel(), a.stem_stride(), p));
    if (a.stages().empty()) return FieldError(p + ".stages", "needs at least one stage");
    for (int i = 0; i < a.stages_size(); ++i) {
      const auto& st = a.stages(i);
      std::string sp = absl::StrCat(p, ".stages[", i, "]");
      NF_RETURN_IF_ERROR(CheckRange(st.blocks(), sp + ".blocks", 1, 256));
      NF_RETURN_IF_ERROR(CheckRange(st.channels(), sp + ".channels", 1, 8192));
      if (st.stride() != 1 && st.stride() != 2) {
        return FieldError(sp + ".stride", absl::StrCat(st.stride(), " is not 1 or 2"));
      }
    }
    return absl::OkStatus();
  }

  void Normalize(v1::Architecture* arch) const override {
    auto* a = arch->mutable_resnet();
    if (a->stem_kernel() == 0) a->set_stem_kernel(3);
    if (a->stem_stride() == 0) a->set_stem_stride(1);
  }

  std::vector<Decision> Decisions(const v1::SearchSpace& space) const override {
    const auto& s = space.resnet();
    std::vector<Decision> d;
    AddDecision(&d, "block", s.block_size(), s.block());
    AddDecision(&d, "stem_channels", s.stem_channels_size(), s.stem_channels());
    for (int i = 0; i < s.stages_size(); ++i) {
      AddDecision(&d, absl::StrCat("stages[", i, "].blocks"), s.stages(i).blocks_size(),
                  s.stages(i).blocks());
      AddDecision(&d, absl::StrCat("stages[", i, "].channels"), s.stages(i).channels_size(),
                  s.stages(i).channels());
    }
    return d;
  }

  v1::Architecture Decode(const v1::SearchSpace& space, const Genes& g) const override {
    const auto& s = space.resnet();
    v1::Architecture arch;
    auto* a = arch.mutable_resnet();
    size_t i = 0;
    a->set_resolution(s.resolution());
    a->set_in_channels(s.in_channels());
    a->set_num_classes(s.num_classes());
    a->set_block(s.block(g[i++]));
    a->set_stem_channels(s.stem_channels(g[i++]));
    a->set_stem_kernel(s.stem_kernel() == 0 ? 3 : s.stem_kernel());
    a->set_stem_stride(s.stem_stride() == 0 ? 1 : s.stem_stride());
    a->set_stem_pool(s.stem_pool());
    for (const auto& st : s.stages()) {
      auto* o = a->add_stages();
      o->set_blocks(st.blocks(g[i++]));
      o->set_channels(st.channels(g[i++]));
      o->set_stride(st.stride());
    }
    return arch;
  }

  std::optional<Genes> Encode(const v1::SearchSpace& space,
                              const v1::Architecture& arch) const override {
    const auto& s = space.resnet();
    const auto& a = arch.resnet();
    if (a.stages_size() != s.stages_size()) return std::nullopt;
    Genes g = {IndexOf(s.block(), a.block()), IndexOf(s.stem_channels(), a.stem_channels())};
    for (int i = 0; i < s.stages_size(); ++i) {
      g.push_back(IndexOf(s.stages(i).blocks(), a.stages(i).blocks()));
      g.push_back(IndexOf(s.stages(i).channels(), a.stages(i).channels()));
    }
    for (int x : g) {
      if (x < 0) return std::nullopt;
    }
    return g;
  }

  void Plan(const v1::Architecture& arch, Planner* p) const override {
    const auto& a = arch.resnet();
    const int k = a.stem_kernel() == 0 ? 3 : a.stem_kernel();
    const int stride = a.stem_stride() == 0 ? 1 : a.stem_stride();
    int size = p->Conv("stem.conv", a.in_channels(), a.stem_channels(), k, stride, k / 2, 1, false,
                       a.resolution());
    p->BatchNorm("stem.bn", a.stem_channels(), size);
    if (a.stem_pool()) size = ConvOutSize(size, 3, 2, 1);
    const int e = Expansion(a.block());
    int c = a.stem_channels();
    for (int s = 0; s < a.stages_size(); ++s) {
      const auto& st = a.stages(s);
      for (int b = 0; b < st.blocks(); ++b) {
        std::string pre = absl::StrCat("stages.", s, ".", b, ".");
        int st_stride = b == 0 ? st.stride() : 1;
        int w = st.channels(), out = st.channels() * e;
        int in_size = size;
        if (e == 1) {
          size = p->Conv(pre + "conv1", c, w, 3, st_stride, 1, 1, false, in_size);
          p->BatchNorm(pre + "bn1", w, size);
          p->Conv(pre + "conv2", w, w, 3, 1, 1, 1, false, size);
          p->BatchNorm(pre + "bn2", w, size);
        } else {
          p->Conv(pre + "conv1", c, w, 1, 1, 0, 1, false, in_size);
          p->BatchNorm(pre + "bn1", w, in_size);
          size = p->Conv(pre + "conv2", w, w, 3, st_stride, 1, 1, false, in_size);
          p->BatchNorm(pre + "bn2", w, size);
          p->Conv(pre + "conv3", w, out, 1, 1, 0, 1, false, size);
          p->BatchNorm(pre + "bn3", out, size);
        }
        if (st_stride != 1 || c != out) {
          p->Conv(pre + "downsample", c, out, 1, st_stride, 0, 1, false, in_size);
          p->BatchNorm(pre + "downsample_bn", out, size);
        }
        c = out;
      }
    }
    p->Linear("fc", c, a.num_classes());
  }

  absl::Status SetResolution(v1::Architecture* arch, int r) const override {
    arch->mutable_resnet()->set_resolution(r);
    return absl::OkStatus();
  }
  void Scale(v1::Architecture* arch, const ScaleMaps& s) const override {
    auto* m = arch->mutable_resnet();
    m->set_stem_channels(s.width(m->stem_channels()));
    for (auto& st : *m->mutable_stages()) {
      st.set_channels(s.width(st.channels()));
      st.set_blocks(s.depth(st.blocks()));
    }
    m->set_resolution(s.resolution(m->resolution()));
  }
  std::string Summary(const v1::Architecture& a) const override {
    std::string out = absl::StrCat(a.resnet().block(), " stem", a.resnet().stem_channels());
    for (const auto& st : a.resnet().stages())
      absl::StrAppend(&out, " ", st.blocks(), "x", st.channels());
    return out;
  }
  InputShape Input(const v1::Architecture& arch) const override {
    const auto& a = arch.resnet();
    return {a.in_channels(), a.resolution(), a.resolution(), a.num_classes()};
  }

 private:
  static absl::Status CheckStem(int kernel, int stride, const std::string& p) {
    if (kernel != 0 && (kernel < 1 || kernel > 11 || kernel % 2 == 0)) {
      return FieldError(p + ".stem_kernel", absl::StrCat(kernel, " is not an odd size in [1, 11]"));
    }
    if (stride != 0 && stride != 1 && stride != 2) {
      return FieldError(p + ".stem_stride", absl::StrCat(stride, " is not 1 or 2"));
    }
    return absl::OkStatus();
  }
  bool Prunable() const override { return true; }
  bool ResidualsFollowWidths() const override { return true; }
};

}  // namespace

const SpaceKind& ResNetKind() {
  static const ResNet k;
  return k;
}

}  // namespace nasforge
