// Every shipped search space: sampling, validation, stable hashing, the decision vector
// (encode/decode), mutation and crossover; errors that name the field, for every kind.
#include <cstdint>
#include <set>
#include <string>

#include "core/cost.h"
#include "core/jobspec.h"
#include "core/nb201.h"
#include "core/scaling.h"
#include "core/search_space.h"
#include "core/space_kind.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/test_util.h"

namespace nasforge {
namespace {

using ::testing::HasSubstr;
using testing::LoadReference;
using testing::LoadSpace;

class ShippedSpaceTest : public ::testing::TestWithParam<std::string> {};

TEST_P(ShippedSpaceTest, ThousandSamplesValidateEncodeAndHashStably) {
  v1::SearchSpace s = LoadSpace(GetParam());
  ASSERT_TRUE(ValidateSearchSpace(s, "search_space").ok())
      << ValidateSearchSpace(s, "search_space");
  const uint64_t size = SpaceSize(s);
  ASSERT_GT(size, 1u);
  std::set<std::string> hashes;
  for (uint64_t i = 0; i < 1000; ++i) {
    v1::Architecture a = SampleArchitecture(s, MixSeed(7, i));
    ASSERT_TRUE(ValidateArchitecture(a, "architecture").ok())
        << ValidateArchitecture(a, "architecture") << "\n"
        << CanonicalEncoding(a);
    EXPECT_TRUE(CheckInSpace(s, a, "architecture").ok());
    EXPECT_EQ(ArchHash(a), ArchHash(SampleArchitecture(s, MixSeed(7, i))));
    // Through the wire format and through YAML (what `space sample` prints): same hash.
    v1::Architecture copy;
    ASSERT_TRUE(copy.ParseFromString(a.SerializeAsString()));
    EXPECT_EQ(ArchHash(copy), ArchHash(a));
    v1::Architecture from_yaml;
    ASSERT_TRUE(YamlToMessage(MessageToYaml(a), &from_yaml).ok()) << MessageToYaml(a);
    EXPECT_EQ(ArchHash(from_yaml), ArchHash(a)) << MessageToYaml(a);
    // Encode(Decode(genes)) round-trips.
    auto genes = EncodeArchitecture(s, a);
    ASSERT_TRUE(genes.has_value());
    EXPECT_EQ(ArchHash(DecodeArchitecture(s, *genes)), ArchHash(a));
    ArchCost c = ComputeCost(a);
    EXPECT_GT(c.params, 0);
    EXPECT_GT(c.macs, 0);
    hashes.insert(ArchHash(a));
  }
  // Distinct samples: close to what uniform sampling of a space this size gives.
  double expected = size * (1 - std::pow(1 - 1.0 / size, 1000.0));
  EXPECT_GT(hashes.size(), 0.95 * std::min(expected, 1000.0)) << size;
}

// Every kind is found through the registry by its oneof name, and summarises and scales through
// its own file (nothing else switches on kinds).
TEST_P(ShippedSpaceTest, ItsKindIsRegisteredAndSummarisesItsArchitectures) {
  v1::SearchSpace s = LoadSpace(GetParam());
  const SpaceKindEntry* e = SpaceKinds().Find(KindName(s));
  ASSERT_NE(e, nullptr) << KindName(s);
  EXPECT_EQ(e->kind->name(), KindName(s));
  v1::Architecture a = SampleArchitecture(s, 11);
  EXPECT_EQ(KindOf(a), e->kind);
  EXPECT_FALSE(ArchSummary(a).empty());
  EXPECT_NE(ArchSummary(a), ArchSummary(SampleArchitecture(s, 12)) + "x");
  auto bigger = ScaleArchitecture(a, 2.0, 2.0, 1.0, 8);
  ASSERT_TRUE(bigger.ok()) << bigger.status();
  EXPECT_GT(ComputeCost(*bigger).params, ComputeCost(a).params);
}

TEST_P(ShippedSpaceTest, MutationChangesOneDecisionAndCrossoverMixesParents) {
  v1::SearchSpace s = LoadSpace(GetParam());
  const auto decisions = SpaceDecisions(s);
  std::mt19937_64 rng(3);
  for (int i = 0; i < 200; ++i) {
    Genes a = SampleGenes(s, rng), b = SampleGenes(s, rng);
    Genes m = MutateGenes(s, a, rng);
    ASSERT_EQ(m.size(), a.size());
    int changed = 0;
    for (size_t k = 0; k < a.size(); ++k) {
      changed += m[k] != a[k];
      ASSERT_GE(m[k], 0);
      ASSERT_LT(m[k], decisions[k].choices);
    }
    EXPECT_EQ(changed, 1);
    v1::Architecture child = DecodeArchitecture(s, m);
    EXPECT_NE(ArchHash(child), ArchHash(DecodeArchitecture(s, a)));
    EXPECT_TRUE(CheckInSpace(s, child, "child").ok());
    Genes c = CrossoverGenes(a, b, rng);
    for (size_t k = 0; k < c.size(); ++k) EXPECT_TRUE(c[k] == a[k] || c[k] == b[k]);
    EXPECT_TRUE(CheckInSpace(s, DecodeArchitecture(s, c), "child").ok());
  }
}

INSTANTIATE_TEST_SUITE_P(Spaces, ShippedSpaceTest,
                         ::testing::ValuesIn(testing::ShippedSpaceFiles()), [](const auto& info) {
                           std::string n = info.param.substr(0, info.param.find('.'));
                           return n;
                         });

// What a kind says of itself, which the trainer, the job-spec checks, compound scaling and the
// tabular backend read instead of asking which kind it is.
TEST(SpacesTest, KindsSayTheirInputScalingAndTables) {
  for (const char* f : {"mbconv_imagenet.yaml", "resnet_imagenet.yaml", "convnext_imagenet.yaml",
                        "nb201_cifar.yaml", "mlp_tabular.yaml"}) {
    v1::SearchSpace s = LoadSpace(f);
    v1::Architecture a = DecodeArchitecture(s, Genes(SpaceDecisions(s).size(), 0));
    const std::string kind = KindName(s);
    SCOPED_TRACE(kind);
    EXPECT_EQ(ArchInputShape(a).flat, kind == "mlp");
    EXPECT_EQ(Scalable(a), kind != "mlp");
    EXPECT_EQ(HasTables(s), kind == "nb201");
    EXPECT_EQ(TableKey(a), kind == "nb201" ? a.nb201().cell() : "");
  }
}

TEST(SpacesTest, SizesCountDistinctArchitectures) {
  EXPECT_EQ(SpaceSize(LoadSpace("nb201_cifar.yaml")), 15625u);
  // MLP: depth 1: 4; depth 2: 4*3; depth 3: 4*3*3 (layers beyond the depth do not exist).
  EXPECT_EQ(SpaceSize(LoadSpace("mlp_tabular.yaml")), 4u + 12 + 36);
  v1::SearchSpace nb = LoadSpace("nb201_cifar.yaml");
  nb.mutable_nb201()->clear_ops();
  nb.mutable_nb201()->add_ops("nor_conv_3x3");
  nb.mutable_nb201()->add_ops("skip_connect");
  EXPECT_EQ(SpaceSize(nb), 64u);
}

TEST(SpacesTest, ReferencesLieInTheImageNetSpaces) {
  EXPECT_TRUE(
      CheckInSpace(LoadSpace("mbconv_imagenet.yaml"), LoadReference("efficientnet_b0.yaml"), "arch")
          .ok());
  EXPECT_TRUE(
      CheckInSpace(LoadSpace("resnet_imagenet.yaml"), LoadReference("resnet18.yaml"), "a").ok());
  EXPECT_TRUE(
      CheckInSpace(LoadSpace("resnet_imagenet.yaml"), LoadReference("resnet50.yaml"), "a").ok());
  EXPECT_TRUE(
      CheckInSpace(LoadSpace("convnext_imagenet.yaml"), LoadReference("convnext_tiny.yaml"), "a")
          .ok());
  EXPECT_TRUE(
      CheckInSpace(LoadSpace("nb201_cifar.yaml"), LoadReference("nb201_best.yaml"), "a").ok());
  // Not in: MobileNetV2 is relu6, the space is silu; ResNet-50 is not an MBConv.
  EXPECT_THAT(
      CheckInSpace(LoadSpace("mbconv_imagenet.yaml"), LoadReference("mobilenet_v2.yaml"), "arch")
          .message(),
      HasSubstr("arch: is not one of the architectures of the search space"));
  EXPECT_THAT(
      CheckInSpace(LoadSpace("mbconv_imagenet.yaml"), LoadReference("resnet50.yaml"), "arch")
          .message(),
      HasSubstr("a resnet architecture is not in a mbconv space"));
}

TEST(SpacesTest, ErrorsNameTheFieldForEveryKind) {
  auto err = [](const std::string& file, const std::function<void(v1::SearchSpace*)>& edit) {
    v1::SearchSpace s = LoadSpace(file);
    edit(&s);
    absl::Status st = ValidateSearchSpace(s, "search_space");
    EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
    return std::string(st.message());
  };
  EXPECT_THAT(err("resnet_small.yaml", [](auto* s) { s->mutable_resnet()->set_block(1, "dense"); }),
              HasSubstr("search_space.resnet.block[1]: 'dense' is not one of basic, bottleneck"));
  EXPECT_THAT(err("resnet_small.yaml",
                  [](auto* s) { s->mutable_resnet()->mutable_stages(1)->set_stride(3); }),
              HasSubstr("search_space.resnet.stages[1].stride: 3 is not 1 or 2"));
  EXPECT_THAT(err("convnext_small.yaml", [](auto* s) { s->mutable_convnext()->set_kernel(0, 4); }),
              HasSubstr("search_space.convnext.kernel: 4 is not odd"));
  EXPECT_THAT(
      err("convnext_small.yaml", [](auto* s) { s->mutable_convnext()->set_patch_size(0, 16); }),
      HasSubstr("search_space.convnext.resolution: 28 is too small for patch size 16"));
  EXPECT_THAT(err("nb201_cifar.yaml", [](auto* s) { s->mutable_nb201()->set_ops(2, "conv_5x5"); }),
              HasSubstr("search_space.nb201.ops[2]: 'conv_5x5' is not one of none, skip_connect"));
  EXPECT_THAT(
      err("mlp_tabular.yaml", [](auto* s) { s->mutable_mlp()->mutable_layers()->RemoveLast(); }),
      HasSubstr("search_space.mlp.layers: has 2 entries but depth allows 3"));
  EXPECT_THAT(err("mbconv_imagenet.yaml",
                  [](auto* s) { s->mutable_mbconv()->mutable_stages(2)->set_kernel(0, 4); }),
              HasSubstr("search_space.mbconv.stages[2].kernel: 4 is not odd"));
  v1::SearchSpace none;
  EXPECT_THAT(
      std::string(ValidateSearchSpace(none, "search_space").message()),
      HasSubstr("search_space: one of convnext, mbconv, mlp, nb201, resnet, custom is required"));
}

TEST(SpacesTest, NB201ArchStringsParseAndErrorsSayWhy) {
  const std::string s =
      "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|none~2|";
  auto ops = ParseNB201Cell(s);
  ASSERT_TRUE(ops.ok());
  EXPECT_EQ((*ops)[2], "avg_pool_3x3");
  EXPECT_EQ((*ops)[5], "none");
  EXPECT_EQ(FormatNB201Cell(*ops), s);
  EXPECT_THAT(std::string(ParseNB201Cell("|nor_conv_3x3~0|+|x~0|").status().message()),
              HasSubstr("expected 3 nodes"));
  EXPECT_THAT(
      std::string(
          ParseNB201Cell("|conv~0|+|none~0|none~1|+|none~0|none~1|none~2|").status().message()),
      HasSubstr("edge 0->1: 'conv' is not one of"));
  EXPECT_THAT(
      std::string(
          ParseNB201Cell("|none~0|+|none~1|none~0|+|none~0|none~1|none~2|").status().message()),
      HasSubstr("must be op~0"));
  v1::Architecture a = LoadReference("nb201_best.yaml");
  a.mutable_nb201()->set_cell("|none~0|");
  EXPECT_THAT(std::string(ValidateArchitecture(a, "architecture").message()),
              HasSubstr("architecture.nb201.cell: "));
}

}  // namespace
}  // namespace nasforge
