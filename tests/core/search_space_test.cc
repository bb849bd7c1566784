#include "core/search_space.h"

#include <fstream>
#include <set>
#include <sstream>

#include "core/cost.h"
#include "core/jobspec.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/test_util.h"

namespace nasforge {
namespace {

using ::testing::HasSubstr;
using testing::LoadSmallSpace;

TEST(SearchSpaceTest, ShippedSpaceValidates) {
  v1::SearchSpace s = LoadSmallSpace();
  EXPECT_TRUE(ValidateSearchSpace(s, "search_space").ok());
  EXPECT_EQ(SpaceSize(s), 3u * 3 * (2 * 3 * 2 * 2 * 2) * (3 * 2 * 3 * 3 * 2) * (2 * 2 * 2 * 3 * 2));
}

TEST(SearchSpaceTest, ErrorsNameTheField) {
  v1::SearchSpace s = LoadSmallSpace();
  s.mutable_mbconv()->mutable_stages(2)->set_kernel(0, 4);
  absl::Status st = ValidateSearchSpace(s, "search_space");
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(st.message(), HasSubstr("search_space.mbconv.stages[2].kernel: 4 is not odd"));

  s = LoadSmallSpace();
  s.mutable_mbconv()->mutable_stages(0)->clear_channels();
  EXPECT_THAT(ValidateSearchSpace(s, "search_space").message(),
              HasSubstr("stages[0].channels: needs at least one choice"));

  s = LoadSmallSpace();
  s.mutable_mbconv()->set_activation("tanh");
  EXPECT_THAT(ValidateSearchSpace(s, "x").message(), HasSubstr("x.mbconv.activation"));
}

TEST(SearchSpaceTest, ThousandSamplesValidateAndHashStably) {
  v1::SearchSpace s = LoadSmallSpace();
  std::set<std::string> hashes;
  for (uint64_t i = 0; i < 1000; ++i) {
    v1::Architecture a = SampleArchitecture(s, MixSeed(42, i));
    ASSERT_TRUE(ValidateArchitecture(a, "architecture").ok()) << i;
    // Same seed, same architecture, same hash; a serialisation round trip keeps the hash.
    v1::Architecture again = SampleArchitecture(s, MixSeed(42, i));
    EXPECT_EQ(ArchHash(a), ArchHash(again));
    v1::Architecture copy;
    ASSERT_TRUE(copy.ParseFromString(a.SerializeAsString()));
    EXPECT_EQ(ArchHash(copy), ArchHash(a));
    hashes.insert(ArchHash(a));
  }
  // A 2.2M-architecture space: 1,000 samples are nearly all distinct.
  EXPECT_GT(hashes.size(), 990u);
}

TEST(SearchSpaceTest, DifferentArchitecturesHashDifferently) {
  v1::SearchSpace s = LoadSmallSpace();
  v1::Architecture a = SampleArchitecture(s, 1);
  v1::Architecture b = a;
  b.mutable_mbconv()->mutable_stages(1)->set_kernel(a.mbconv().stages(1).kernel() == 3 ? 5 : 3);
  EXPECT_NE(ArchHash(a), ArchHash(b));
  EXPECT_NE(CanonicalEncoding(a), CanonicalEncoding(b));
}

TEST(CostTest, HandCountedTinyNetwork) {
  // stem 3x3 1->8 on 8x8; one block: expand 8->16 (e=2), dw 3x3 s2 -> 4x4, SE(8*0.25=2),
  // project 16->8; no head; classifier 8->10.
  v1::Architecture a;
  auto* m = a.mutable_mbconv();
  m->set_resolution(8);
  m->set_in_channels(1);
  m->set_num_classes(10);
  m->set_stem_channels(8);
  auto* st = m->add_stages();
  st->set_kernel(3);
  st->set_expansion(2);
  st->set_repeats(1);
  st->set_channels(8);
  st->set_se_ratio(0.25);
  st->set_stride(2);
  ArchCost c = ComputeCost(a);
  int64_t stem = 8 * 1 * 9, stem_bn = 16;
  int64_t expand = 16 * 8, expand_bn = 32, dw = 16 * 9, dw_bn = 32;
  int64_t se = (16 * 2 + 2) + (2 * 16 + 16), project = 8 * 16, project_bn = 16;
  int64_t fc = 8 * 10 + 10;
  EXPECT_EQ(c.params,
            stem + stem_bn + expand + expand_bn + dw + dw_bn + se + project + project_bn + fc);
  int64_t macs = stem * 64 + expand * 64 + dw * 16 + (16 * 2 + 2 * 16) + project * 16 + 80;
  EXPECT_EQ(c.macs, macs);
}

}  // namespace
}  // namespace nasforge
