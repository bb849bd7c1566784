#include "core/cost.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace nasforge {
namespace {

class Planner {
 public:
  void Conv(std::string name, int in, int out, int k, int stride, int groups, bool bias,
            int in_size) {
    LayerCost l;
    l.name = std::move(name);
    l.kind = "conv";
    l.in_channels = in;
    l.out_channels = out;
    l.kernel = k;
    l.stride = stride;
    l.groups = groups;
    l.bias = bias;
    l.out_size = ConvOutSize(in_size, stride);
    int64_t weights = int64_t{out} * (in / groups) * k * k;
    l.params = weights + (bias ? out : 0);
    l.macs = weights * l.out_size * l.out_size;
    Add(std::move(l));
  }
  void BatchNorm(std::string name, int c, int size) {
    LayerCost l;
    l.name = std::move(name);
    l.kind = "bn";
    l.in_channels = l.out_channels = c;
    l.out_size = size;
    l.params = 2 * int64_t{c};
    Add(std::move(l));
  }
  void Linear(std::string name, int in, int out) {
    LayerCost l;
    l.name = std::move(name);
    l.kind = "linear";
    l.in_channels = in;
    l.out_channels = out;
    l.bias = true;
    l.params = int64_t{in} * out + out;
    l.macs = int64_t{in} * out;
    Add(std::move(l));
  }
  ArchCost Take() { return std::move(cost_); }

 private:
  void Add(LayerCost l) {
    cost_.macs += l.macs;
    cost_.params += l.params;
    cost_.layers.push_back(std::move(l));
  }
  ArchCost cost_;
};

}  // namespace

int SqueezeChannels(int block_in_channels, double se_ratio) {
  return std::max(1, static_cast<int>(block_in_channels * se_ratio + 1e-9));
}

ArchCost ComputeCost(const v1::Architecture& arch) {
  const auto& a = arch.mbconv();
  Planner p;
  int size = a.resolution();
  int stem_stride = a.stem_stride() == 0 ? 1 : a.stem_stride();
  p.Conv("stem.conv", a.in_channels(), a.stem_channels(), 3, stem_stride, 1, false, size);
  size = ConvOutSize(size, stem_stride);
  p.BatchNorm("stem.bn", a.stem_channels(), size);
  int c = a.stem_channels();
  for (int s = 0; s < a.stages_size(); ++s) {
    const auto& st = a.stages(s);
    for (int b = 0; b < st.repeats(); ++b) {
      std::string pre = absl::StrCat("stages.", s, ".", b, ".");
      int stride = b == 0 ? st.stride() : 1;
      int hidden = c * st.expansion();
      if (st.expansion() != 1) {
        p.Conv(pre + "expand", c, hidden, 1, 1, 1, false, size);
        p.BatchNorm(pre + "expand_bn", hidden, size);
      }
      p.Conv(pre + "depthwise", hidden, hidden, st.kernel(), stride, hidden, false, size);
      size = ConvOutSize(size, stride);
      p.BatchNorm(pre + "depthwise_bn", hidden, size);
      if (st.se_ratio() > 0) {
        int sq = SqueezeChannels(c, st.se_ratio());
        p.Conv(pre + "se.reduce", hidden, sq, 1, 1, 1, true, 1);
        p.Conv(pre + "se.expand", sq, hidden, 1, 1, 1, true, 1);
      }
      p.Conv(pre + "project", hidden, st.channels(), 1, 1, 1, false, size);
      p.BatchNorm(pre + "project_bn", st.channels(), size);
      c = st.channels();
    }
  }
  if (a.head_channels() > 0) {
    p.Conv("head.conv", c, a.head_channels(), 1, 1, 1, false, size);
    p.BatchNorm("head.bn", a.head_channels(), size);
    c = a.head_channels();
  }
  p.Linear("classifier", c, a.num_classes());
  return p.Take();
}

}  // namespace nasforge
