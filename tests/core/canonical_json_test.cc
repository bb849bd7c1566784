// The fast canonical text equals protobuf's JSON printer, byte for byte: architecture hashes are
// stored with every trial and must not change when the writer does.
#include "core/canonical_json.h"

#include <cstdint>
#include <random>

#include "core/jobspec.h"
#include "core/search_space.h"
#include "gtest/gtest.h"
#include "tests/test_util.h"

namespace nasforge {
namespace {

TEST(CanonicalJsonTest, EqualsProtobufsPrinterOnEveryShippedSpaceAndReference) {
  int compared = 0;
  for (const std::string& file : testing::ShippedSpaceFiles()) {
    v1::SearchSpace space = testing::LoadSpace(file);
    for (uint64_t seed = 0; seed < 300; ++seed) {
      v1::Architecture a = NormalizedArchitecture(SampleArchitecture(space, seed));
      std::optional<std::string> fast = FastCanonicalJson(a);
      ASSERT_TRUE(fast.has_value()) << file << " seed " << seed;
      ASSERT_EQ(*fast, ProtobufCanonicalEncoding(a)) << file << " seed " << seed;
      ++compared;
    }
  }
  for (const char* ref :
       {"convnext_tiny.yaml", "efficientnet_b0.yaml", "mobilenet_v2.yaml", "nb201_best.yaml",
        "nb201_resnet_like.yaml", "resnet18.yaml", "resnet50.yaml"}) {
    v1::Architecture a = NormalizedArchitecture(testing::LoadReference(ref));
    ASSERT_EQ(FastCanonicalJson(a).value(), ProtobufCanonicalEncoding(a)) << ref;
  }
  EXPECT_EQ(compared, 300 * static_cast<int>(testing::ShippedSpaceFiles().size()));
}

TEST(CanonicalJsonTest, DoublesAndDefaultsFormatAsProtobufDoes) {
  std::mt19937_64 rng(7);
  std::uniform_real_distribution<double> u(-1e3, 1e3);
  std::vector<double> values = {0.0,
                                -0.0,
                                1.0,
                                0.1,
                                0.25,
                                1e-7,
                                1e21,
                                123456789.125,
                                2.0 / 3.0,
                                5e-324,
                                1.7976931348623157e308};
  for (int i = 0; i < 2000; ++i) values.push_back(u(rng));
  for (double v : values) {
    v1::Architecture a;
    a.mutable_mlp()->set_dropout(v);  // every other field left at its default
    ASSERT_EQ(FastCanonicalJson(a).value(), ProtobufCanonicalEncoding(a)) << v;
  }
  v1::Architecture empty;
  EXPECT_EQ(FastCanonicalJson(empty).value(), ProtobufCanonicalEncoding(empty));
}

TEST(CanonicalJsonTest, WhatItDoesNotCoverFallsBackToProtobuf) {
  v1::Architecture a;
  a.mutable_mlp()->set_activation("quote\"d");
  EXPECT_FALSE(FastCanonicalJson(a).has_value());
  a.mutable_mlp()->set_activation("relu");
  a.mutable_mlp()->set_dropout(std::numeric_limits<double>::quiet_NaN());
  EXPECT_FALSE(FastCanonicalJson(a).has_value());
  // CanonicalEncoding answers either way, with protobuf's text.
  EXPECT_EQ(CanonicalEncoding(a), ProtobufCanonicalEncoding(NormalizedArchitecture(a)));
}

}  // namespace
}  // namespace nasforge
