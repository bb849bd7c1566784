// MBConv family (EfficientNet / MobileNetV2): stem 3x3 conv, stages of inverted-residual blocks
// (1x1 expand unless expansion is 1, depthwise kxk, optional squeeze-excitation, 1x1 project,
// residual when shapes match), optional 1x1 head conv, pooling, dropout, linear classifier.
#include <string>

#include "core/space_kind.h"

namespace nasforge {
namespace {

absl::Status CheckActivation(const std::string& a, const std::string& path) {
  if (a.empty()) return absl::OkStatus();
  return CheckName(a, path, {"silu", "relu", "relu6"});
}

class MBConv final : public SpaceKind {
 public:
  std::string name() const override { return "mbconv"; }
  absl::Status ValidateSpace(const v1::SearchSpace& space, const std::string& p) const override {
    const auto& s = space.mbconv();
    NF_RETURN_IF_ERROR(CheckRange(s.resolution(), p + ".resolution", 8, 1024));
    NF_RETURN_IF_ERROR(CheckRange(s.in_channels(), p + ".in_channels", 1, 16));
    NF_RETURN_IF_ERROR(CheckRange(s.num_classes(), p + ".num_classes", 2, 100000));
    NF_RETURN_IF_ERROR(CheckChoices(s.stem_channels(), p + ".stem_channels", 1, 4096));
    if (s.stem_stride() != 0 && s.stem_stride() != 1 && s.stem_stride() != 2) {
      return FieldError(p + ".stem_stride", absl::StrCat(s.stem_stride(), " is not 1 or 2"));
    }
    if (s.stages().empty()) return FieldError(p + ".stages", "needs at least one stage");
    if (s.stages_size() > 12) return FieldError(p + ".stages", "at most 12 stages");
    for (int i = 0; i < s.stages_size(); ++i) {
      const auto& st = s.stages(i);
      std::string sp = absl::StrCat(p, ".stages[", i, "]");
      NF_RETURN_IF_ERROR(CheckChoices(st.kernel(), sp + ".kernel", 1, 11, /*must_be_odd=*/true));
      NF_RETURN_IF_ERROR(CheckChoices(st.expansion(), sp + ".expansion", 1, 12));
      NF_RETURN_IF_ERROR(CheckChoices(st.repeats(), sp + ".repeats", 1, 16));
      NF_RETURN_IF_ERROR(CheckChoices(st.channels(), sp + ".channels", 1, 4096));
      NF_RETURN_IF_ERROR(CheckChoices(st.se_ratio(), sp + ".se_ratio", 0.0, 1.0));
      if (st.stride() != 1 && st.stride() != 2) {
        return FieldError(sp + ".stride", absl::StrCat(st.stride(), " is not 1 or 2"));
      }
    }
    if (!s.head_channels().empty()) {
      NF_RETURN_IF_ERROR(CheckChoices(s.head_channels(), p + ".head_channels", 0, 8192));
    }
    NF_RETURN_IF_ERROR(CheckActivation(s.activation(), p + ".activation"));
    if (s.dropout() < 0 || s.dropout() >= 1) {
      return FieldError(p + ".dropout", absl::StrCat(s.dropout(), " is out of range [0, 1)"));
    }
    return absl::OkStatus();
  }

  absl::Status ValidateArch(const v1::Architecture& arch, const std::string& p) const override {
    const auto& a = arch.mbconv();
    NF_RETURN_IF_ERROR(CheckRange(a.resolution(), p + ".resolution", 8, 4096));
    NF_RETURN_IF_ERROR(CheckRange(a.in_channels(), p + ".in_channels", 1, 16));
    NF_RETURN_IF_ERROR(CheckRange(a.num_classes(), p + ".num_classes", 2, 100000));
    NF_RETURN_IF_ERROR(CheckRange(a.stem_channels(), p + ".stem_channels", 1, 8192));
    if (a.stem_stride() != 0 && a.stem_stride() != 1 && a.stem_stride() != 2) {
      return FieldError(p + ".stem_stride", absl::StrCat(a.stem_stride(), " is not 1 or 2"));
    }
    if (a.stages().empty()) return FieldError(p + ".stages", "needs at least one stage");
    for (int i = 0; i < a.stages_size(); ++i) {
      const auto& st = a.stages(i);
      std::string sp = absl::StrCat(p, ".stages[", i, "]");
      if (st.kernel() < 1 || st.kernel() % 2 == 0) {
        return FieldError(sp + ".kernel", absl::StrCat(st.kernel(), " is not a positive odd size"));
      }
      NF_RETURN_IF_ERROR(CheckRange(st.expansion(), sp + ".expansion", 1, 12));
      NF_RETURN_IF_ERROR(CheckRange(st.repeats(), sp + ".repeats", 1, 64));
      NF_RETURN_IF_ERROR(CheckRange(st.channels(), sp + ".channels", 1, 8192));
      if (st.se_ratio() < 0 || st.se_ratio() > 1) {
        return FieldError(sp + ".se_ratio", absl::StrCat(st.se_ratio(), " is not in [0, 1]"));
      }
      if (st.stride() != 1 && st.stride() != 2) {
        return FieldError(sp + ".stride", absl::StrCat(st.stride(), " is not 1 or 2"));
      }
    }
    NF_RETURN_IF_ERROR(CheckRange(a.head_channels(), p + ".head_channels", 0, 16384));
    if (a.dropout() < 0 || a.dropout() >= 1) {
      return FieldError(p + ".dropout", absl::StrCat(a.dropout(), " is out of range [0, 1)"));
    }
    return CheckActivation(a.activation(), p + ".activation");
  }

  void Normalize(v1::Architecture* arch) const override {
    auto* a = arch->mutable_mbconv();
    if (a->stem_stride() == 0) a->set_stem_stride(1);
    if (a->activation().empty()) a->set_activation("silu");
  }

  std::vector<Decision> Decisions(const v1::SearchSpace& space) const override {
    const auto& s = space.mbconv();
    std::vector<Decision> d;
    AddDecision(&d, "stem_channels", s.stem_channels_size(), s.stem_channels());
    AddDecision(&d, "head_channels", std::max(1, s.head_channels_size()), s.head_channels(), "0");
    for (int i = 0; i < s.stages_size(); ++i) {
      const auto& st = s.stages(i);
      std::string sp = absl::StrCat("stages[", i, "].");
      AddDecision(&d, sp + "kernel", st.kernel_size(), st.kernel());
      AddDecision(&d, sp + "expansion", st.expansion_size(), st.expansion());
      AddDecision(&d, sp + "repeats", st.repeats_size(), st.repeats());
      AddDecision(&d, sp + "channels", st.channels_size(), st.channels());
      AddDecision(&d, sp + "se_ratio", st.se_ratio_size(), st.se_ratio());
    }
    return d;
  }

  v1::Architecture Decode(const v1::SearchSpace& space, const Genes& g) const override {
    const auto& s = space.mbconv();
    v1::Architecture arch;
    auto* a = arch.mutable_mbconv();
    size_t i = 0;
    a->set_resolution(s.resolution());
    a->set_in_channels(s.in_channels());
    a->set_num_classes(s.num_classes());
    a->set_stem_channels(s.stem_channels(g[i++]));
    a->set_stem_stride(s.stem_stride() == 0 ? 1 : s.stem_stride());
    int head = g[i++];
    a->set_head_channels(s.head_channels().empty() ? 0 : s.head_channels(head));
    for (const auto& st : s.stages()) {
      auto* o = a->add_stages();
      o->set_kernel(st.kernel(g[i++]));
      o->set_expansion(st.expansion(g[i++]));
      o->set_repeats(st.repeats(g[i++]));
      o->set_channels(st.channels(g[i++]));
      o->set_se_ratio(st.se_ratio(g[i++]));
      o->set_stride(st.stride());
    }
    a->set_activation(s.activation().empty() ? "silu" : s.activation());
    a->set_dropout(s.dropout());
    return arch;
  }

  std::optional<Genes> Encode(const v1::SearchSpace& space,
                              const v1::Architecture& arch) const override {
    const auto& s = space.mbconv();
    const auto& a = arch.mbconv();
    if (a.stages_size() != s.stages_size()) return std::nullopt;
    Genes g;
    g.push_back(IndexOf(s.stem_channels(), a.stem_channels()));
    g.push_back(s.head_channels().empty() ? (a.head_channels() == 0 ? 0 : -1)
                                          : IndexOf(s.head_channels(), a.head_channels()));
    for (int i = 0; i < s.stages_size(); ++i) {
      const auto& st = s.stages(i);
      const auto& at = a.stages(i);
      g.push_back(IndexOf(st.kernel(), at.kernel()));
      g.push_back(IndexOf(st.expansion(), at.expansion()));
      g.push_back(IndexOf(st.repeats(), at.repeats()));
      g.push_back(IndexOf(st.channels(), at.channels()));
      g.push_back(IndexOf(st.se_ratio(), at.se_ratio()));
    }
    for (int x : g) {
      if (x < 0) return std::nullopt;
    }
    return g;
  }

  void Plan(const v1::Architecture& arch, Planner* p) const override {
    const auto& a = arch.mbconv();
    int size = a.resolution();
    int stem_stride = a.stem_stride() == 0 ? 1 : a.stem_stride();
    size =
        p->Conv("stem.conv", a.in_channels(), a.stem_channels(), 3, stem_stride, 1, 1, false, size);
    p->BatchNorm("stem.bn", a.stem_channels(), size);
    int c = a.stem_channels();
    for (int s = 0; s < a.stages_size(); ++s) {
      const auto& st = a.stages(s);
      for (int b = 0; b < st.repeats(); ++b) {
        std::string pre = absl::StrCat("stages.", s, ".", b, ".");
        int stride = b == 0 ? st.stride() : 1;
        int hidden = c * st.expansion();
        if (st.expansion() != 1) {
          p->Conv(pre + "expand", c, hidden, 1, 1, 0, 1, false, size);
          p->BatchNorm(pre + "expand_bn", hidden, size);
        }
        size = p->Conv(pre + "depthwise", hidden, hidden, st.kernel(), stride, st.kernel() / 2,
                       hidden, false, size);
        p->BatchNorm(pre + "depthwise_bn", hidden, size);
        if (st.se_ratio() > 0) {
          int sq = SqueezeChannels(c, st.se_ratio());
          p->Conv(pre + "se.reduce", hidden, sq, 1, 1, 0, 1, true, 1);
          p->Conv(pre + "se.expand", sq, hidden, 1, 1, 0, 1, true, 1);
        }
        p->Conv(pre + "project", hidden, st.channels(), 1, 1, 0, 1, false, size);
        p->BatchNorm(pre + "project_bn", st.channels(), size);
        c = st.channels();
      }
    }
    if (a.head_channels() > 0) {
      p->Conv("head.conv", c, a.head_channels(), 1, 1, 0, 1, false, size);
      p->BatchNorm("head.bn", a.head_channels(), size);
      c = a.head_channels();
    }
    p->Linear("classifier", c, a.num_classes());
  }

  absl::Status SetResolution(v1::Architecture* arch, int r) const override {
    arch->mutable_mbconv()->set_resolution(r);
    return absl::OkStatus();
  }
  void Scale(v1::Architecture* arch, const ScaleMaps& s) const override {
    auto* m = arch->mutable_mbconv();
    m->set_stem_channels(s.width(m->stem_channels()));
    for (auto& st : *m->mutable_stages()) {
      st.set_channels(s.width(st.channels()));
      st.set_repeats(s.depth(st.repeats()));
    }
    if (m->head_channels() > 0) m->set_head_channels(s.width(m->head_channels()));
    m->set_resolution(s.resolution(m->resolution()));
  }
  std::string Summary(const v1::Architecture& a) const override {
    std::string out;
    for (const auto& st : a.mbconv().stages()) {
      absl::StrAppend(&out, out.empty() ? "" : " ", "k", st.kernel(), "e", st.expansion(), "x",
                      st.repeats(), "c", st.channels(), st.se_ratio() > 0 ? "se" : "");
    }
    return out;
  }
  InputShape Input(const v1::Architecture& arch) const override {
    const auto& a = arch.mbconv();
    return {a.in_channels(), a.resolution(), a.resolution(), a.num_classes()};
  }
  bool Prunable() const override { return true; }
  bool ResidualsFollowWidths() const override { return true; }
};

}  // namespace

const SpaceKind& MBConvKind() {
  static const MBConv k;
  return k;
}

}  // namespace nasforge
