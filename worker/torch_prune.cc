#include "worker/torch_prune.h"

#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/nb201.h"
#include "core/search_space.h"

namespace nasforge {
namespace {

// Builds a network's groups from the names of its state-dict tensors.
class Plan {
 public:
  explicit Plan(NetImpl& net) {
    for (const auto& p : net.named_parameters(/*recurse=*/true)) names_.insert(p.key());
    for (const auto& b : net.named_buffers(/*recurse=*/true)) names_.insert(b.key());
  }
  int New(std::string name) {
    groups_.push_back(ChannelGroup{std::move(name), {}, {}});
    return static_cast<int>(groups_.size()) - 1;
  }
  // A CountedConv or CountedLinear at `layer` writes group g's channels (weight and bias dim 0);
  // `score`: its filters' norms count towards which channels stay.
  void Out(int g, const std::string& layer, bool score = true) {
    const std::string w = Layer(layer) + ".weight", b = Layer(layer) + ".bias";
    Add(g, w, 0);
    if (names_.count(b)) Add(g, b, 0);
    if (score) groups_[g].producers.push_back(w);
  }
  // A new group written by the layer at `layer` and normalized by `norm` (a stem, a head).
  int Written(std::string name, const std::string& layer, const std::string& norm) {
    const int g = New(std::move(name));
    Out(g, layer);
    Norm(g, norm);
    return g;
  }
  // The layer at `layer` reads group g's channels (weight dim 1).
  void In(int g, const std::string& layer) { Add(g, Layer(layer) + ".weight", 1); }
  // A BatchNorm or LayerNorm over group g's channels.
  void Norm(int g, const std::string& module) {
    bool any = false;
    for (const char* t : {".weight", ".bias", ".running_mean", ".running_var"}) {
      if (names_.count(module + t)) {
        Add(g, module + t, 0);
        any = true;
      }
    }
    if (!any) missing_.push_back(module);
  }
  // A free tensor (layer scale) over group g's channels along `dim`, if the network has it.
  void Param(int g, const std::string& name, int dim) {
    if (names_.count(name)) Add(g, name, dim);
  }
  absl::StatusOr<std::vector<ChannelGroup>> Take() {
    if (!missing_.empty()) {
      return absl::InternalError(absl::StrCat("pruning plan names ", missing_.front(),
                                              ", which the built network does not have (a "
                                              "builder changed without its pruning plan)"));
    }
    return std::move(groups_);
  }

 private:
  std::string Layer(const std::string& layer) {
    if (names_.count(layer + ".conv.weight")) return layer + ".conv";
    if (names_.count(layer + ".linear.weight")) return layer + ".linear";
    missing_.push_back(layer);
    return layer;
  }
  void Add(int g, const std::string& name, int dim) {
    if (!names_.count(name)) {
      missing_.push_back(name);
      return;
    }
    groups_[g].members.emplace_back(name, dim);
  }
  std::set<std::string> names_;
  std::vector<ChannelGroup> groups_;
  std::vector<std::string> missing_;
};

void MLPPlan(const v1::Architecture& arch, Plan& p) {
  const v1::MLPArch& a = arch.mlp();
  int cur = -1;  // the input features are never pruned
  for (int i = 0; i < a.units_size(); ++i) {
    const std::string h = absl::StrCat("hidden", i);
    if (cur >= 0) p.In(cur, h);
    const int g = p.New(h);
    p.Out(g, h);
    if (a.batch_norm()) p.Norm(g, absl::StrCat("bn", i));
    cur = g;
  }
  if (cur >= 0) p.In(cur, "classifier");
}

void MBConvPlan(const v1::Architecture& arch, Plan& p) {
  const v1::MBConvArch& a = arch.mbconv();
  int cur = p.Written("stem", "stem", "stem_bn");
  int c = a.stem_channels(), b = 0;
  for (int s = 0; s < a.stages_size(); ++s) {
    const auto& st = a.stages(s);
    for (int r = 0; r < st.repeats(); ++r, ++b) {
      const std::string pre = absl::StrCat("blocks.", b, ".");
      const int stride = r == 0 ? st.stride() : 1;
      int h = cur;  // expansion 1: the depthwise conv works on the block's input channels
      if (st.expansion() != 1) {
        p.In(cur, pre + "expand");
        h = p.New(pre + "expanded");
        p.Out(h, pre + "expand");
        p.Norm(h, pre + "expand_bn");
      }
      p.Out(h, pre + "depthwise");
      p.Norm(h, pre + "depthwise_bn");
      if (st.se_ratio() > 0) {
        const int q = p.New(pre + "squeeze");
        p.In(h, pre + "se_reduce");
        p.Out(q, pre + "se_reduce");
        p.In(q, pre + "se_expand");
        p.Out(h, pre + "se_expand", /*score=*/false);  // a gate, not a feature
      }
      p.In(h, pre + "project");
      const bool residual = stride == 1 && c == st.channels();
      const int o = residual ? cur : p.New(absl::StrCat("stage", s));
      p.Out(o, pre + "project");
      p.Norm(o, pre + "project_bn");
      cur = o;
      c = st.channels();
    }
  }
  if (a.head_channels() > 0) {
    p.In(cur, "head");
    cur = p.Written("head", "head", "head_bn");
  }
  p.In(cur, "classifier");
}

void ResNetPlan(const v1::Architecture& arch, Plan& p) {
  const v1::ResNetArch& a = arch.resnet();
  const bool bottleneck = a.block() == "bottleneck";
  int cur = p.Written("stem", "stem", "stem_bn");
  int c = a.stem_channels(), b = 0;
  for (int s = 0; s < a.stages_size(); ++s) {
    const auto& st = a.stages(s);
    const int out = bottleneck ? 4 * st.channels() : st.channels();
    for (int k = 0; k < st.blocks(); ++k, ++b) {
      const std::string pre = absl::StrCat("blocks.", b, ".");
      const int stride = k == 0 ? st.stride() : 1;
      p.In(cur, pre + "conv1");
      const int g1 = p.New(pre + "conv1");
      p.Out(g1, pre + "conv1");
      p.Norm(g1, pre + "bn1");
      p.In(g1, pre + "conv2");
      std::string last = "conv2", last_bn = "bn2";
      if (bottleneck) {
        const int g2 = p.New(pre + "conv2");
        p.Out(g2, pre + "conv2");
        p.Norm(g2, pre + "bn2");
        p.In(g2, pre + "conv3");
        last = "conv3";
        last_bn = "bn3";
      }
      const bool down = stride != 1 || c != out;
      const int o = down ? p.New(absl::StrCat("stage", s)) : cur;
      p.Out(o, pre + last);
      p.Norm(o, pre + last_bn);
      if (down) {
        p.In(cur, pre + "downsample");
        p.Out(o, pre + "downsample");
        p.Norm(o, pre + "downsample_bn");
      }
      cur = o;
      c = out;
    }
  }
  p.In(cur, "fc");
}

void ConvNeXtPlan(const v1::Architecture& arch, Plan& p) {
  const v1::ConvNeXtArch& a = arch.convnext();
  int cur = p.Written("stage0", "stem", "stem_norm");
  for (int s = 0; s < a.stages_size(); ++s) {
    if (s > 0) {
      const std::string d = absl::StrCat("down", s);
      p.Norm(cur, d + "_norm");
      p.In(cur, d);
      cur = p.New(absl::StrCat("stage", s));
      p.Out(cur, d);
    }
    for (int b = 0; b < a.stages(s).depth(); ++b) {
      const std::string pre = absl::StrCat("stage", s, ".", b, ".");
      p.Out(cur, pre + "dwconv");
      p.Norm(cur, pre + "norm");
      p.In(cur, pre + "pwconv1");
      const int h = p.New(pre + "hidden");
      p.Out(h, pre + "pwconv1");
      p.In(h, pre + "pwconv2");
      p.Out(cur, pre + "pwconv2");
      p.Param(cur, pre + "layer_scale", 0);
    }
  }
  p.Norm(cur, "head_norm");
  p.In(cur, "fc");
}

bool ConvOp(const std::string& op) { return op == "nor_conv_1x1" || op == "nor_conv_3x3"; }

void NB201Plan(const v1::Architecture& arch, Plan& p) {
  const v1::NB201Arch& a = arch.nb201();
  const auto ops = ParseNB201Cell(a.cell());  // validated by the caller
  int cur = p.Written("stage0", "stem", "stem_bn");
  int i = 0;  // index in the `cells` sequence (cells and reductions)
  for (int s = 0; s < 3; ++s) {
    if (s > 0) {
      const std::string pre = absl::StrCat("cells.", i++, ".");
      const int o = p.New(absl::StrCat("stage", s));
      p.In(cur, pre + "conv_a.conv");
      p.Out(o, pre + "conv_a.conv");
      p.Norm(o, pre + "conv_a.bn");
      p.In(o, pre + "conv_b.conv");
      p.Out(o, pre + "conv_b.conv");
      p.Norm(o, pre + "conv_b.bn");
      p.In(cur, pre + "shortcut");
      p.Out(o, pre + "shortcut");
      cur = o;
    }
    for (int k = 0; k < a.cells_per_stage(); ++k, ++i) {
      for (int e = 0; e < 6; ++e) {
        if (!ops.ok() || !ConvOp((*ops)[e])) continue;
        const std::string edge = absl::StrCat("cells.", i, ".edge", e);
        p.In(cur, edge + ".conv");
        p.Out(cur, edge + ".conv");
        p.Norm(cur, edge + ".bn");
      }
    }
  }
  p.Norm(cur, "lastact_bn");
  p.In(cur, "classifier");
}

using PlanFn = std::function<void(const v1::Architecture&, Plan&)>;

const std::map<std::string, PlanFn>& Plans() {
  static const auto* plans = new std::map<std::string, PlanFn>{
      {"mbconv", MBConvPlan}, {"resnet", ResNetPlan}, {"convnext", ConvNeXtPlan},
      {"nb201", NB201Plan},   {"mlp", MLPPlan},
  };
  return *plans;
}

std::map<std::string, torch::Tensor> Tensors(NetImpl& net) {
  std::map<std::string, torch::Tensor> out;
  for (const auto& p : net.named_parameters(/*recurse=*/true)) out[p.key()] = p.value();
  for (const auto& b : net.named_buffers(/*recurse=*/true)) out[b.key()] = b.value();
  return out;
}

}  // namespace

absl::StatusOr<std::vector<ChannelGroup>> ChannelGroups(const v1::Architecture& arch_in,
                                                        NetImpl& net) {
  const v1::Architecture arch = NormalizedArchitecture(arch_in);
  auto it = Plans().find(KindName(arch));
  if (it == Plans().end()) {
    return absl::FailedPreconditionError(
        absl::StrCat("kind ", KindName(arch), " has no pruning plan in this worker"));
  }
  Plan p(net);
  it->second(arch, p);
  return p.Take();
}

absl::StatusOr<std::vector<GroupCut>> CopyPrunedWeights(NetImpl& parent, NetImpl& child,
                                                        const std::vector<ChannelGroup>& groups) {
  torch::NoGradGuard no_grad;
  const std::map<std::string, torch::Tensor> from = Tensors(parent), to = Tensors(child);
  for (const auto& [name, t] : from) {
    if (!to.count(name)) {
      return absl::InternalError(absl::StrCat("pruned network lacks ", name));
    }
  }
  for (const auto& [name, t] : to) {
    if (!from.count(name)) return absl::InternalError(absl::StrCat("parent lacks ", name));
  }
  std::map<std::pair<std::string, int>, torch::Tensor> cut;  // (tensor, dim) -> kept channels
  std::vector<GroupCut> report;
  for (const ChannelGroup& g : groups) {
    if (g.members.empty()) continue;
    const auto& [first, first_dim] = g.members.front();
    const int64_t n = from.at(first).size(first_dim), keep = to.at(first).size(first_dim);
    for (const auto& [name, dim] : g.members) {
      if (from.at(name).size(dim) != n || to.at(name).size(dim) != keep) {
        return absl::InternalError(absl::StrCat(
            "channel group ", g.name, ": ", name, " has ", from.at(name).size(dim), " -> ",
            to.at(name).size(dim), " channels along dim ", dim, ", not ", n, " -> ", keep));
      }
    }
    if (keep > n) {
      return absl::InternalError(
          absl::StrCat("channel group ", g.name, " grows from ", n, " to ", keep));
    }
    const torch::Device device = from.at(first).device();
    torch::Tensor kept;
    if (keep == n) {
      kept = torch::arange(n, torch::TensorOptions().dtype(torch::kInt64).device(device));
    } else {
      torch::Tensor score = torch::zeros({n}, torch::TensorOptions().device(device));
      for (const std::string& w : g.producers) {
        const torch::Tensor l1 = from.at(w).detach().abs().flatten(1).sum(1).to(torch::kFloat32);
        score += l1 / l1.mean().clamp_min(1e-12);
      }
      // Ties (an all-zero group) keep the first channels: topk on the score, then index order.
      kept = std::get<1>(torch::topk(score, keep, 0, /*largest=*/true, /*sorted=*/true));
      kept = std::get<0>(torch::sort(kept));
    }
    for (const auto& [name, dim] : g.members) {
      auto [it, fresh] = cut.emplace(std::make_pair(name, dim), kept);
      if (!fresh) {
        return absl::InternalError(absl::StrCat(name, " dim ", dim, " is in two channel groups"));
      }
    }
    report.push_back({g.name, keep, n});
  }
  for (const auto& [name, src] : from) {
    torch::Tensor t = src.detach();
    for (int64_t d = 0; d < t.dim(); ++d) {
      auto c = cut.find({name, static_cast<int>(d)});
      if (c != cut.end()) t = t.index_select(d, c->second.to(t.device()));
    }
    torch::Tensor dst = to.at(name);
    if (t.sizes() != dst.sizes()) {
      return absl::InternalError(
          absl::StrCat("pruning ", name, ": [", absl::StrJoin(t.sizes(), ","), "] after the cut, [",
                       absl::StrJoin(dst.sizes(), ","),
                       "] in the pruned network (a dimension no channel group covers)"));
    }
    dst.copy_(t);
  }
  return report;
}

int RecalibrateBatchNorms(NetImpl& net, const std::vector<torch::Tensor>& batches) {
  torch::NoGradGuard no_grad;
  std::vector<std::pair<torch::nn::BatchNormOptions*, c10::optional<double>>> momenta;
  const auto reset = [&](auto& bn) {
    bn->reset_running_stats();
    momenta.emplace_back(&bn->options, bn->options.momentum());
    bn->options.momentum(c10::nullopt);  // cumulative average over the batches
  };
  for (const auto& m : net.modules(/*include_self=*/false)) {
    if (auto b2 = std::dynamic_pointer_cast<torch::nn::BatchNorm2dImpl>(m)) {
      reset(b2);
    } else if (auto b1 = std::dynamic_pointer_cast<torch::nn::BatchNorm1dImpl>(m)) {
      reset(b1);
    }
  }
  if (!momenta.empty() && !batches.empty()) {
    net.train();
    for (const torch::Tensor& x : batches) net.forward(x);
  }
  for (auto& [options, momentum] : momenta) options->momentum(momentum);
  net.eval();
  return static_cast<int>(momenta.size());
}

}  // namespace nasforge
