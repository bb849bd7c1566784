// Structured pruning's channel surgery (worker/torch_prune.h): the channels kept by hand-computed
// L1 norms, and on sampled networks of every built-in kind: a network whose channels to be
// removed carry nothing (their producing filters, biases and norms zero) computes the same
// logits after pruning, so every tensor that reads or writes a removed channel was cut alike.
#include "worker/torch_prune.h"

#include <torch/torch.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "core/compression.h"
#include "core/cost.h"
#include "core/search_space.h"
#include "gtest/gtest.h"
#include "tests/test_util.h"
#include "worker/torch_models.h"

namespace nasforge {
namespace {

std::map<std::string, torch::Tensor> Tensors(NetImpl& net) {
  std::map<std::string, torch::Tensor> out;
  for (const auto& p : net.named_parameters(true)) out[p.key()] = p.value();
  for (const auto& b : net.named_buffers(true)) out[b.key()] = b.value();
  return out;
}

TEST(ChannelSurgeryTest, KeepsTheFiltersOfLargestL1NormInOrder) {
  v1::Architecture parent_arch;
  auto* m = parent_arch.mutable_mlp();
  m->set_in_features(3);
  m->set_num_classes(2);
  m->add_units(4);
  v1::Architecture child_arch = PrunedArchitecture(parent_arch, 0.5).value();
  ASSERT_EQ(child_arch.mlp().units(0), 2);
  auto parent = BuildNet(parent_arch).value(), child = BuildNet(child_arch).value();
  auto p = Tensors(*parent);
  {
    torch::NoGradGuard ng;
    // Row L1 norms 1, 4, 2, 3: channels 1 and 3 stay, in that order.
    p.at("hidden0.linear.weight")
        .copy_(
            torch::tensor({{1.0, 0.0, 0.0}, {-2.0, 2.0, 0.0}, {0.0, 0.0, 2.0}, {1.0, 1.0, -1.0}}));
    p.at("hidden0.linear.bias").copy_(torch::tensor({10.0, 11.0, 12.0, 13.0}));
    p.at("classifier.linear.weight")
        .copy_(torch::tensor({{1.0, 2.0, 3.0, 4.0}, {5.0, 6.0, 7.0, 8.0}}));
  }
  auto groups = ChannelGroups(parent_arch, *parent).value();
  ASSERT_EQ(groups.size(), 1u);
  auto cuts = CopyPrunedWeights(*parent, *child, groups).value();
  ASSERT_EQ(cuts.size(), 1u);
  EXPECT_EQ(cuts[0].kept, 2);
  EXPECT_EQ(cuts[0].of, 4);
  auto c = Tensors(*child);
  EXPECT_TRUE(torch::equal(c.at("hidden0.linear.weight"),
                           torch::tensor({{-2.0, 2.0, 0.0}, {1.0, 1.0, -1.0}}).to(torch::kFloat)));
  EXPECT_TRUE(
      torch::equal(c.at("hidden0.linear.bias"), torch::tensor({11.0, 13.0}).to(torch::kFloat)));
  EXPECT_TRUE(torch::equal(c.at("classifier.linear.weight"),
                           torch::tensor({{2.0, 4.0}, {6.0, 8.0}}).to(torch::kFloat)));
  // The classifier's own outputs (the logits) are never cut.
  EXPECT_TRUE(torch::equal(c.at("classifier.linear.bias"), p.at("classifier.linear.bias")));
}

TEST(ChannelSurgeryTest, AnotherArchitectureIsRefused) {
  v1::Architecture a;
  a.mutable_mlp()->set_in_features(3);
  a.mutable_mlp()->set_num_classes(2);
  a.mutable_mlp()->add_units(4);
  v1::Architecture b = a;
  b.mutable_mlp()->add_units(4);  // one more layer: not the same network, narrower
  auto pa = BuildNet(a).value(), pb = BuildNet(b).value();
  auto groups = ChannelGroups(a, *pa).value();
  auto cut = CopyPrunedWeights(*pa, *pb, groups);
  ASSERT_FALSE(cut.ok());
  EXPECT_TRUE(absl::StrContains(cut.status().message(), "lacks")) << cut.status();
}

v1::Architecture Sample(const std::string& space_file, uint64_t seed) {
  return NormalizedArchitecture(SampleArchitecture(testing::LoadSpace(space_file), seed));
}

// Makes the channels past each group's kept count carry nothing: every writer's filters and
// bias, every norm's scale, shift and mean zero. Norm variances stay (they divide).
void SilenceRemovedChannels(NetImpl& parent, NetImpl& child,
                            const std::vector<ChannelGroup>& groups) {
  torch::NoGradGuard ng;
  auto p = Tensors(parent), c = Tensors(child);
  for (const ChannelGroup& g : groups) {
    const auto& [first, dim] = g.members.front();
    const int64_t keep = c.at(first).size(dim), n = p.at(first).size(dim);
    for (const auto& [name, d] : g.members) {
      if (d != 0 || absl::EndsWith(name, "running_var")) continue;
      p.at(name).narrow(0, keep, n - keep).zero_();
    }
  }
}

struct KindCase {
  const char* space;
  bool exact;  // LayerNorm (ConvNeXt) normalizes over channels: removing zeros moves its mean
};

class EveryKindPruneTest : public ::testing::TestWithParam<KindCase> {};

TEST_P(EveryKindPruneTest, SilentChannelsAreTheOnesRemovedAndTheLogitsStay) {
  int pruned = 0;
  for (uint64_t seed = 1; seed <= 6; ++seed) {
    torch::manual_seed(seed);
    const v1::Architecture arch = Sample(GetParam().space, seed);
    auto child_arch = PrunedArchitecture(arch, 0.5);
    if (!child_arch.ok()) {
      // Rounding merged two widths: refused with a reason, never a wrong network.
      EXPECT_TRUE(absl::StrContains(child_arch.status().message(), "choose another ratio"));
      continue;
    }
    ++pruned;
    auto parent = BuildNet(arch).value(), child = BuildNet(*child_arch).value();
    // Random norm statistics, so the cut of each is checked.
    {
      torch::NoGradGuard ng;
      for (auto& [name, t] : Tensors(*parent)) {
        if (absl::EndsWith(name, "running_var")) t.uniform_(0.5, 2.0);
        if (absl::EndsWith(name, "running_mean")) t.uniform_(-0.5, 0.5);
      }
    }
    auto groups = ChannelGroups(arch, *parent);
    ASSERT_TRUE(groups.ok()) << groups.status();
    SilenceRemovedChannels(*parent, *child, *groups);
    auto cuts = CopyPrunedWeights(*parent, *child, *groups);
    ASSERT_TRUE(cuts.ok()) << cuts.status() << " " << ArchSummary(arch);
    // The pruned network is the architecture's own (the analytic count agrees) and smaller.
    int64_t params = 0;
    for (const auto& t : child->parameters()) params += t.numel();
    EXPECT_EQ(params, ComputeCost(*child_arch).params);
    EXPECT_LT(ComputeCost(*child_arch).macs, ComputeCost(arch).macs);
    parent->eval();
    child->eval();
    torch::NoGradGuard ng;
    const InputShape in = ArchInputShape(arch);
    torch::Tensor x = in.flat ? torch::randn({3, in.channels})
                              : torch::randn({3, in.channels, in.height, in.width});
    torch::Tensor a = parent->forward(x), b = child->forward(x);
    if (GetParam().exact) {
      EXPECT_TRUE(torch::allclose(a, b, 1e-4, 1e-5)) << ArchSummary(arch) << "\n" << a << "\n" << b;
    } else {
      EXPECT_EQ(b.sizes(), a.sizes());
      EXPECT_TRUE(torch::isfinite(b).all().item<bool>());
    }
  }
  EXPECT_GE(pruned, 3) << "too few sampled networks could be pruned at 0.5";
}

INSTANTIATE_TEST_SUITE_P(Kinds, EveryKindPruneTest,
                         ::testing::Values(KindCase{"mbconv_small.yaml", true},
                                           KindCase{"resnet_small.yaml", true},
                                           KindCase{"convnext_small.yaml", false},
                                           KindCase{"nb201_fashion_mnist.yaml", true},
                                           KindCase{"mlp_tabular.yaml", true}),
                         [](const auto& info) {
                           std::string n = info.param.space;
                           return n.substr(0, n.find('.'));
                         });

}  // namespace
}  // namespace nasforge
