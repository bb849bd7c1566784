// The LibTorch builders, one per search-space kind, mirroring core/spaces/*.cc layer for layer
// (the analytic count and the module count must agree exactly; tests check every kind).
#include "worker/torch_models.h"

#include <map>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/cost.h"
#include "core/nb201.h"
#include "core/search_space.h"

namespace nasforge {
namespace {

namespace nn = torch::nn;

torch::Tensor Act(const torch::Tensor& x, const std::string& a) {
  if (a == "relu") return torch::relu(x);
  if (a == "relu6") return torch::hardtanh(x, 0.0, 6.0);
  if (a == "gelu") return torch::gelu(x);
  return torch::silu(x);
}

// Same-padded odd-kernel conv without bias.
CountedConv SameConv(int in, int out, int k, int stride, int groups = 1, bool bias = false) {
  return CountedConv(in, out, k, stride, k / 2, groups, bias);
}

// --- MBConv ---------------------------------------------------------------------------------

struct MBConvBlockImpl : nn::Module {
  MBConvBlockImpl(int in, const v1::MBConvStage& st, int stride, std::string act)
      : act(std::move(act)) {
    int hidden = in * st.expansion();
    if (st.expansion() != 1) {
      expand = register_module("expand", SameConv(in, hidden, 1, 1));
      expand_bn = register_module("expand_bn", nn::BatchNorm2d(hidden));
    }
    depthwise = register_module("depthwise", SameConv(hidden, hidden, st.kernel(), stride, hidden));
    depthwise_bn = register_module("depthwise_bn", nn::BatchNorm2d(hidden));
    if (st.se_ratio() > 0) {
      int sq = SqueezeChannels(in, st.se_ratio());
      se_reduce = register_module("se_reduce", SameConv(hidden, sq, 1, 1, 1, true));
      se_expand = register_module("se_expand", SameConv(sq, hidden, 1, 1, 1, true));
    }
    project = register_module("project", SameConv(hidden, st.channels(), 1, 1));
    project_bn = register_module("project_bn", nn::BatchNorm2d(st.channels()));
    residual = stride == 1 && in == st.channels();
  }
  torch::Tensor forward(torch::Tensor x) {
    torch::Tensor h = x;
    if (!expand.is_empty()) h = Act(expand_bn->forward(expand->forward(h)), act);
    h = Act(depthwise_bn->forward(depthwise->forward(h)), act);
    if (!se_reduce.is_empty()) {
      auto s = torch::adaptive_avg_pool2d(h, {1, 1});
      s = torch::sigmoid(se_expand->forward(Act(se_reduce->forward(s), act)));
      h = h * s;
    }
    h = project_bn->forward(project->forward(h));
    return residual ? h + x : h;
  }
  std::string act;
  CountedConv expand{nullptr}, depthwise{nullptr}, se_reduce{nullptr}, se_expand{nullptr},
      project{nullptr};
  nn::BatchNorm2d expand_bn{nullptr}, depthwise_bn{nullptr}, project_bn{nullptr};
  bool residual = false;
};
TORCH_MODULE(MBConvBlock);

struct MBConvNet : NetImpl {
  explicit MBConvNet(const v1::MBConvArch& a) : act(a.activation()) {
    stem = register_module("stem", SameConv(a.in_channels(), a.stem_channels(), 3,
                                            a.stem_stride() == 0 ? 1 : a.stem_stride()));
    stem_bn = register_module("stem_bn", nn::BatchNorm2d(a.stem_channels()));
    blocks = register_module("blocks", nn::Sequential());
    int c = a.stem_channels();
    for (const auto& st : a.stages()) {
      for (int b = 0; b < st.repeats(); ++b) {
        blocks->push_back(MBConvBlock(c, st, b == 0 ? st.stride() : 1, act));
        c = st.channels();
      }
    }
    if (a.head_channels() > 0) {
      head = register_module("head", SameConv(c, a.head_channels(), 1, 1));
      head_bn = register_module("head_bn", nn::BatchNorm2d(a.head_channels()));
      c = a.head_channels();
    }
    dropout = register_module("dropout", nn::Dropout(a.dropout()));
    classifier = register_module("classifier", CountedLinear(c, a.num_classes()));
  }
  torch::Tensor forward(torch::Tensor x) override {
    x = Act(stem_bn->forward(stem->forward(x)), act);
    x = blocks->forward(x);
    if (!head.is_empty()) x = Act(head_bn->forward(head->forward(x)), act);
    x = torch::adaptive_avg_pool2d(x, {1, 1}).flatten(1);
    return classifier->forward(HeadDropout(dropout->forward(x)));
  }
  std::string act;
  CountedConv stem{nullptr}, head{nullptr};
  nn::BatchNorm2d stem_bn{nullptr}, head_bn{nullptr};
  nn::Sequential blocks{nullptr};
  nn::Dropout dropout{nullptr};
  CountedLinear classifier{nullptr};
};

// --- ResNet ---------------------------------------------------------------------------------

struct ResNetBlockImpl : nn::Module {
  ResNetBlockImpl(int in, int width, int stride, bool bottleneck) {
    int out = bottleneck ? 4 * width : width;
    if (bottleneck) {
      convs.push_back(register_module("conv1", SameConv(in, width, 1, 1)));
      convs.push_back(register_module("conv2", SameConv(width, width, 3, stride)));
      convs.push_back(register_module("conv3", SameConv(width, out, 1, 1)));
      bns = {register_module("bn1", nn::BatchNorm2d(width)),
             register_module("bn2", nn::BatchNorm2d(width)),
             register_module("bn3", nn::BatchNorm2d(out))};
    } else {
      convs.push_back(register_module("conv1", SameConv(in, width, 3, stride)));
      convs.push_back(register_module("conv2", SameConv(width, width, 3, 1)));
      bns = {register_module("bn1", nn::BatchNorm2d(width)),
             register_module("bn2", nn::BatchNorm2d(width))};
    }
    if (stride != 1 || in != out) {
      down = register_module("downsample", CountedConv(in, out, 1, stride, 0, 1, false));
      down_bn = register_module("downsample_bn", nn::BatchNorm2d(out));
    }
  }
  torch::Tensor forward(torch::Tensor x) {
    torch::Tensor h = x;
    for (size_t i = 0; i < convs.size(); ++i) {
      h = bns[i]->forward(convs[i]->forward(h));
      if (i + 1 < convs.size()) h = torch::relu(h);
    }
    torch::Tensor skip = down.is_empty() ? x : down_bn->forward(down->forward(x));
    return torch::relu(h + skip);
  }
  std::vector<CountedConv> convs;
  std::vector<nn::BatchNorm2d> bns;
  CountedConv down{nullptr};
  nn::BatchNorm2d down_bn{nullptr};
};
TORCH_MODULE(ResNetBlock);

struct ResNetNet : NetImpl {
  explicit ResNetNet(const v1::ResNetArch& a) : pool(a.stem_pool()) {
    int k = a.stem_kernel() == 0 ? 3 : a.stem_kernel();
    stem = register_module("stem", SameConv(a.in_channels(), a.stem_channels(), k,
                                            a.stem_stride() == 0 ? 1 : a.stem_stride()));
    stem_bn = register_module("stem_bn", nn::BatchNorm2d(a.stem_channels()));
    blocks = register_module("blocks", nn::Sequential());
    const bool bottleneck = a.block() == "bottleneck";
    int c = a.stem_channels();
    for (const auto& st : a.stages()) {
      for (int b = 0; b < st.blocks(); ++b) {
        blocks->push_back(ResNetBlock(c, st.channels(), b == 0 ? st.stride() : 1, bottleneck));
        c = bottleneck ? 4 * st.channels() : st.channels();
      }
    }
    fc = register_module("fc", CountedLinear(c, a.num_classes()));
  }
  torch::Tensor forward(torch::Tensor x) override {
    x = torch::relu(stem_bn->forward(stem->forward(x)));
    if (pool) x = torch::max_pool2d(x, 3, 2, 1);
    x = blocks->forward(x);
    return fc->forward(HeadDropout(torch::adaptive_avg_pool2d(x, {1, 1}).flatten(1)));
  }
  bool pool;
  CountedConv stem{nullptr};
  nn::BatchNorm2d stem_bn{nullptr};
  nn::Sequential blocks{nullptr};
  CountedLinear fc{nullptr};
};

// --- ConvNeXt -------------------------------------------------------------------------------

// LayerNorm over channels of an NCHW tensor.
torch::Tensor ChannelNorm(nn::LayerNorm& ln, const torch::Tensor& x) {
  return ln->forward(x.permute({0, 2, 3, 1})).permute({0, 3, 1, 2});
}

nn::LayerNorm LN(int c) { return nn::LayerNorm(nn::LayerNormOptions({c}).eps(1e-6)); }

struct ConvNeXtBlockImpl : nn::Module {
  ConvNeXtBlockImpl(int c, int k, int ratio, double layer_scale) {
    dw = register_module("dwconv", SameConv(c, c, k, 1, c, true));
    ln = register_module("norm", LN(c));
    pw1 = register_module("pwconv1", CountedLinear(c, ratio * c));
    pw2 = register_module("pwconv2", CountedLinear(ratio * c, c));
    if (layer_scale > 0) {
      gamma = register_parameter("layer_scale", torch::full({c, 1, 1}, layer_scale));
    }
  }
  torch::Tensor forward(torch::Tensor x) {
    auto h = dw->forward(x).permute({0, 2, 3, 1});
    h = pw2->forward(torch::gelu(pw1->forward(ln->forward(h)))).permute({0, 3, 1, 2});
    if (gamma.defined()) h = h * gamma;
    return x + h;
  }
  CountedConv dw{nullptr};
  nn::LayerNorm ln{nullptr};
  CountedLinear pw1{nullptr}, pw2{nullptr};
  torch::Tensor gamma;
};
TORCH_MODULE(ConvNeXtBlock);

struct ConvNeXtNet : NetImpl {
  explicit ConvNeXtNet(const v1::ConvNeXtArch& a) {
    int c = a.stages(0).channels();
    int k = a.kernel() == 0 ? 7 : a.kernel();
    int ratio = a.mlp_ratio() == 0 ? 4 : a.mlp_ratio();
    double ls = a.layer_scale() == 0 ? 1e-6 : a.layer_scale();
    stem = register_module(
        "stem", CountedConv(a.in_channels(), c, a.patch_size(), a.patch_size(), 0, 1, true));
    stem_ln = register_module("stem_norm", LN(c));
    for (int s = 0; s < a.stages_size(); ++s) {
      const auto& st = a.stages(s);
      if (s > 0) {
        down_ln.push_back(register_module(absl::StrCat("down", s, "_norm"), LN(c)));
        down.push_back(register_module(absl::StrCat("down", s),
                                       CountedConv(c, st.channels(), 2, 2, 0, 1, true)));
        c = st.channels();
      }
      auto seq = register_module(absl::StrCat("stage", s), nn::Sequential());
      for (int b = 0; b < st.depth(); ++b) seq->push_back(ConvNeXtBlock(c, k, ratio, ls));
      stages.push_back(seq);
    }
    head_ln = register_module("head_norm", LN(c));
    fc = register_module("fc", CountedLinear(c, a.num_classes()));
  }
  torch::Tensor forward(torch::Tensor x) override {
    x = ChannelNorm(stem_ln, stem->forward(x));
    for (size_t s = 0; s < stages.size(); ++s) {
      if (s > 0) x = down[s - 1]->forward(ChannelNorm(down_ln[s - 1], x));
      x = stages[s]->forward(x);
    }
    x = torch::adaptive_avg_pool2d(x, {1, 1}).flatten(1);
    return fc->forward(HeadDropout(head_ln->forward(x)));
  }
  CountedConv stem{nullptr};
  nn::LayerNorm stem_ln{nullptr}, head_ln{nullptr};
  std::vector<nn::LayerNorm> down_ln;
  std::vector<CountedConv> down;
  std::vector<nn::Sequential> stages;
  CountedLinear fc{nullptr};
};

// --- NAS-Bench-201 --------------------------------------------------------------------------

struct ReLUConvBNImpl : nn::Module {
  ReLUConvBNImpl(int in, int out, int k, int stride) {
    conv = register_module("conv", SameConv(in, out, k, stride));
    bn = register_module("bn", nn::BatchNorm2d(out));
  }
  torch::Tensor forward(const torch::Tensor& x) {
    return bn->forward(conv->forward(torch::relu(x)));
  }
  CountedConv conv{nullptr};
  nn::BatchNorm2d bn{nullptr};
};
TORCH_MODULE(ReLUConvBN);

struct NB201CellImpl : nn::Module {
  NB201CellImpl(const std::array<std::string, 6>& ops, int c) : ops(ops) {
    for (int e = 0; e < 6; ++e) {
      if (ops[e] == "nor_conv_1x1" || ops[e] == "nor_conv_3x3") {
        convs[e] = register_module(absl::StrCat("edge", e),
                                   ReLUConvBN(c, c, ops[e] == "nor_conv_1x1" ? 1 : 3, 1));
      }
    }
  }
  torch::Tensor Edge(int e, const torch::Tensor& x) {
    const std::string& op = ops[e];
    if (op == "none") return x.mul(0.0);
    if (op == "skip_connect") return x;
    if (op == "avg_pool_3x3") return torch::avg_pool2d(x, 3, 1, 1, false, false);
    return convs[e]->forward(x);
  }
  torch::Tensor forward(const torch::Tensor& x0) {
    auto n1 = Edge(0, x0);
    auto n2 = Edge(1, x0) + Edge(2, n1);
    return Edge(3, x0) + Edge(4, n1) + Edge(5, n2);
  }
  std::array<std::string, 6> ops;
  std::array<ReLUConvBN, 6> convs = {nullptr, nullptr, nullptr, nullptr, nullptr, nullptr};
};
TORCH_MODULE(NB201Cell);

struct NB201ReductionImpl : nn::Module {
  NB201ReductionImpl(int in, int out) {
    conv_a = register_module("conv_a", ReLUConvBN(in, out, 3, 2));
    conv_b = register_module("conv_b", ReLUConvBN(out, out, 3, 1));
    shortcut = register_module("shortcut", CountedConv(in, out, 1, 1, 0, 1, false));
  }
  torch::Tensor forward(const torch::Tensor& x) {
    return conv_b->forward(conv_a->forward(x)) + shortcut->forward(torch::avg_pool2d(x, 2, 2, 0));
  }
  ReLUConvBN conv_a{nullptr}, conv_b{nullptr};
  CountedConv shortcut{nullptr};
};
TORCH_MODULE(NB201Reduction);

struct NB201Net : NetImpl {
  explicit NB201Net(const v1::NB201Arch& a) {
    auto ops = ParseNB201Cell(a.cell());  // validated by the caller
    int c = a.channels();
    stem = register_module("stem", SameConv(a.in_channels(), c, 3, 1));
    stem_bn = register_module("stem_bn", nn::BatchNorm2d(c));
    cells = register_module("cells", nn::Sequential());
    for (int s = 0; s < 3; ++s) {
      if (s > 0) {
        cells->push_back(NB201Reduction(c, 2 * c));
        c *= 2;
      }
      for (int k = 0; k < a.cells_per_stage(); ++k) cells->push_back(NB201Cell(*ops, c));
    }
    last_bn = register_module("lastact_bn", nn::BatchNorm2d(c));
    classifier = register_module("classifier", CountedLinear(c, a.num_classes()));
  }
  torch::Tensor forward(torch::Tensor x) override {
    x = cells->forward(stem_bn->forward(stem->forward(x)));
    x = torch::relu(last_bn->forward(x));
    return classifier->forward(HeadDropout(torch::adaptive_avg_pool2d(x, {1, 1}).flatten(1)));
  }
  CountedConv stem{nullptr};
  nn::BatchNorm2d stem_bn{nullptr}, last_bn{nullptr};
  nn::Sequential cells{nullptr};
  CountedLinear classifier{nullptr};
};

// --- MLP ------------------------------------------------------------------------------------

struct MLPNet : NetImpl {
  explicit MLPNet(const v1::MLPArch& a) : act(a.activation()), p(a.dropout()) {
    int c = a.in_features();
    for (int i = 0; i < a.units_size(); ++i) {
      hidden.push_back(register_module(absl::StrCat("hidden", i), CountedLinear(c, a.units(i))));
      if (a.batch_norm()) {
        bns.push_back(register_module(absl::StrCat("bn", i), nn::BatchNorm1d(a.units(i))));
      }
      c = a.units(i);
    }
    classifier = register_module("classifier", CountedLinear(c, a.num_classes()));
  }
  torch::Tensor forward(torch::Tensor x) override {
    x = x.flatten(1);
    for (size_t i = 0; i < hidden.size(); ++i) {
      x = hidden[i]->forward(x);
      if (!bns.empty()) x = bns[i]->forward(x);
      x = torch::dropout(Act(x, act), p, is_training());
    }
    return classifier->forward(HeadDropout(x));
  }
  std::string act;
  double p;
  std::vector<CountedLinear> hidden;
  std::vector<nn::BatchNorm1d> bns;
  CountedLinear classifier{nullptr};
};

}  // namespace

namespace {
template <typename Net, typename Arch>
TorchBuilderEntry Builder(std::string name, const Arch& (v1::Architecture::*get)() const) {
  return {std::move(name), [get](const v1::Architecture& a) -> std::shared_ptr<NetImpl> {
            return std::make_shared<Net>((a.*get)());
          }};
}

void BuiltinBuilders(NameRegistry<TorchBuilderEntry>& r) {
  r.AddBuiltin(Builder<MBConvNet>("mbconv", &v1::Architecture::mbconv));
  r.AddBuiltin(Builder<ResNetNet>("resnet", &v1::Architecture::resnet));
  r.AddBuiltin(Builder<ConvNeXtNet>("convnext", &v1::Architecture::convnext));
  r.AddBuiltin(Builder<NB201Net>("nb201", &v1::Architecture::nb201));
  r.AddBuiltin(Builder<MLPNet>("mlp", &v1::Architecture::mlp));
}
}  // namespace

NameRegistry<TorchBuilderEntry>& TorchBuilders() {
  return GlobalRegistry<TorchBuilderEntry>("LibTorch builder", BuiltinBuilders);
}

absl::StatusOr<std::shared_ptr<NetImpl>> BuildNet(const v1::Architecture& arch_in) {
  const v1::Architecture arch = NormalizedArchitecture(arch_in);
  const TorchBuilderEntry* e = TorchBuilders().Find(KindName(arch));
  if (e == nullptr) {
    return absl::FailedPreconditionError(
        absl::StrCat("kind ", KindName(arch), " has no LibTorch builder in this worker (",
                     absl::StrJoin(TorchBuilders().Names(), ", "),
                     "); run a worker built with the program that registers the kind"));
  }
  return e->build(arch);
}

NetCount CountNet(NetImpl& net, const torch::Tensor& input) {
  NetCount n;
  for (const auto& p : net.parameters()) n.params += p.numel();
  bool was_training = net.is_training();
  net.eval();
  {
    torch::NoGradGuard ng;
    auto y = net.forward(input);
    n.output_shape = y.sizes().vec();
  }
  net.train(was_training);
  for (const auto& m : net.modules(/*include_self=*/false)) {
    if (auto c = std::dynamic_pointer_cast<CountedConvImpl>(m)) {
      n.macs += c->Macs();
    } else if (auto l = std::dynamic_pointer_cast<CountedLinearImpl>(m)) {
      n.macs += l->Macs();
    }
  }
  return n;
}

}  // namespace nasforge
