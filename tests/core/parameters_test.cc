// Typed hyperparameters searched with the architecture (core/parameters.h): validation names
// the field, grids and conditions decode and encode exactly, every sampled or mutated candidate
// is valid, active and in bounds, and candidates without parameters hash as before.
#include "core/parameters.h"

#include <cmath>
#include <cstdlib>
#include <random>
#include <set>
#include <string>
#include <tuple>

#include "core/jobspec.h"
#include "core/search_space.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace nasforge {
namespace {

using ::testing::HasSubstr;

v1::SearchSpace Space(const std::string& yaml) {
  v1::SearchSpace s;
  absl::Status st = YamlToMessage(yaml, &s);
  EXPECT_TRUE(st.ok()) << st;
  return s;
}

constexpr const char* kJoint = R"(
name: joint
mlp: {in_features: 784, num_classes: 10, depth: [1, 2], layers: [{units: [16, 32]}, {units: [16, 32]}]}
parameters:
  - {name: optimizer, categorical: {values: [adamw, sgd]}}
  - {name: lr, real: {low: 1e-4, high: 1e-1, log: true}}
  - {name: momentum, real: {low: 0.5, high: 0.99, levels: 50}, when: [{parameter: optimizer, values: [sgd]}]}
  - {name: nesterov, categorical: {values: ["off", "on"]}, when: [{parameter: momentum, values: ["0.99"]}]}
  - {name: batch_size, integer: {low: 16, high: 1024, log: true}}
  - {name: warmup, integer: {low: 0, high: 5}}
  - {name: dropout, real: {low: 0, high: 0.5, step: 0.1}}
  - {name: width_mult, ordinal: {values: [0.5, 0.75, 1.0]}}
)";

TEST(ParametersTest, ErrorsNameTheField) {
  struct Case {
    std::string params, field, what;
  };
  const Case cases[] = {
      {"[{name: Lr, real: {low: 0.1, high: 1}}]", "parameters[0].name", "lower-case identifier"},
      {"[{name: lr, real: {low: 0.1, high: 1}}, {name: lr, integer: {low: 1, high: 2}}]",
       "parameters[1].name", "declared twice"},
      {"[{name: lr}]", "parameters[0]", "one of real, integer, categorical, ordinal"},
      {"[{name: lr, real: {low: 0, high: 1, log: true}}]", "parameters[0].real.low",
       "must be > 0 with log"},
      {"[{name: lr, real: {low: 1, high: 0.5}}]", "parameters[0].real.high", "above low"},
      {"[{name: lr, real: {low: 0, high: 1, step: 0.1, levels: 4}}]", "parameters[0].real.levels",
       "step or levels"},
      {"[{name: lr, real: {low: 0, high: 1, levels: 1}}]", "parameters[0].real.levels",
       "out of range"},
      {"[{name: n, integer: {low: 0, high: 8, log: true}}]", "parameters[0].integer.low",
       ">= 1 with log"},
      {"[{name: o, categorical: {values: [a, a]}}]", "parameters[0].categorical.values[1]",
       "listed twice"},
      {"[{name: o, ordinal: {values: [1, 3, 2]}}]", "parameters[0].ordinal.values[2]",
       "must increase"},
      {"[{name: m, real: {low: 0, high: 1}, when: [{parameter: o, values: [x]}]}]",
       "parameters[0].when[0].parameter", "declared before"},
      {"[{name: o, categorical: {values: [a, b]}}, {name: m, integer: {low: 1, high: 3}, when: "
       "[{parameter: o, values: [c]}]}]",
       "parameters[1].when[0].values[0]", "'c' is not a value of o"},
  };
  for (const Case& c : cases) {
    v1::SearchSpace s =
        Space("mlp: {in_features: 784, num_classes: 10, depth: [0]}\nparameters: " + c.params);
    absl::Status st = ValidateSearchSpace(s, "search_space");
    EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument) << c.params;
    EXPECT_THAT(st.message(), HasSubstr("search_space." + c.field)) << c.params;
    EXPECT_THAT(st.message(), HasSubstr(c.what)) << c.params;
  }
}

TEST(ParametersTest, GridsHaveExactEndsCleanStepsAndOrderedDecisions) {
  v1::SearchSpace s = Space(kJoint);
  ASSERT_TRUE(ValidateSearchSpace(s, "search_space").ok()) << ValidateSearchSpace(s, "s");
  auto d = ParameterDecisions(s);
  ASSERT_EQ(d.size(), 8u);
  EXPECT_EQ(d[0].name, "params.optimizer");
  EXPECT_FALSE(d[0].ordered);
  EXPECT_EQ(d[1].choices, 1024);
  EXPECT_TRUE(d[1].ordered);
  EXPECT_EQ(d[2].choices, 50);
  EXPECT_EQ(d[5].choices, 6);  // 0..5 exactly
  EXPECT_EQ(d[6].choices, 6);  // 0, 0.1, ..., 0.5
  EXPECT_EQ(d[7].choices, 3);
  // The whole space's decisions: the MLP's, then the parameters'.
  const auto all = SpaceDecisions(s);
  ASSERT_EQ(all.size(), 3 + 8u);
  Genes g(all.size(), 0);
  g[3] = 0;     // adamw: momentum and nesterov inactive
  g[4] = 1023;  // lr: the high end, exactly
  g[8] = 3;     // warmup 3
  g[9] = 3;     // dropout 0.3, not 0.30000000000000004
  g[10] = 2;    // width_mult 1
  v1::Architecture a = DecodeArchitecture(s, g);
  EXPECT_EQ(FindParam(a, "lr")->number(), 0.1);
  EXPECT_EQ(FindParam(a, "dropout")->number(), 0.3);
  EXPECT_EQ(FindParam(a, "warmup")->number(), 3);
  EXPECT_EQ(FindParam(a, "batch_size")->number(), 16);
  EXPECT_EQ(FindParam(a, "momentum"), nullptr);
  EXPECT_EQ(FindParam(a, "optimizer")->text(), "adamw");
  EXPECT_EQ(ParamsSummary(a),
            "batch_size=16 dropout=0.3 lr=0.1 optimizer=adamw warmup=3 width_mult=1");
  g[4] = 0;
  EXPECT_EQ(FindParam(DecodeArchitecture(s, g), "lr")->number(), 1e-4);
}

TEST(ParametersTest, ConditionsDecideWhichParametersAreActive) {
  v1::SearchSpace s = Space(kJoint);
  const size_t nk = 3;
  Genes g(SpaceDecisions(s).size(), 0);
  g[nk + 0] = 1;   // sgd
  g[nk + 2] = 49;  // momentum 0.99: nesterov active
  g[nk + 3] = 1;
  v1::Architecture a = DecodeArchitecture(s, g);
  EXPECT_EQ(FindParam(a, "momentum")->number(), 0.99);
  EXPECT_EQ(FindParam(a, "nesterov")->text(), "on");
  g[nk + 2] = 10;  // another momentum: nesterov inactive, its gene does not matter
  v1::Architecture b = DecodeArchitecture(s, g);
  EXPECT_EQ(FindParam(b, "nesterov"), nullptr);
  Genes other = g;
  other[nk + 3] = 0;
  EXPECT_EQ(ArchHash(b), ArchHash(DecodeArchitecture(s, other)));
  EXPECT_EQ(CanonicalGenes(s, g)[nk + 3], 0);

  // Enqueued candidates: an inactive value, a missing one, an off-grid one are refused, named.
  v1::Architecture bad = a;
  FindParam(a, "optimizer");
  for (auto& v : *bad.mutable_params()->mutable_values()) {
    if (v.name() == "optimizer") v.set_text("adamw");
  }
  absl::Status st = CheckInSpace(s, bad, "architecture");
  EXPECT_THAT(st.message(), HasSubstr("'momentum' is inactive here"));
  bad = b;
  bad.mutable_params()->mutable_values()->RemoveLast();
  EXPECT_THAT(CheckInSpace(s, bad, "architecture").message(), HasSubstr("needs a value for"));
  bad = b;
  for (auto& v : *bad.mutable_params()->mutable_values()) {
    if (v.name() == "lr") v.set_number(0.0123);
  }
  st = CheckInSpace(s, bad, "architecture");
  EXPECT_THAT(st.message(), HasSubstr("architecture.params[lr]: 0.0123 is not one of its values"));
  EXPECT_THAT(st.message(), HasSubstr("nearest"));

  // Size counts only the active combinations: the MLP (2 + 4 = 6 architectures) times
  // optimizer adamw (1) + sgd with momentum (49 without nesterov, 1 with two), times the rest.
  const uint64_t rest = 1024ull * SpaceDecisions(s)[nk + 4].choices * 6 * 6 * 3;
  EXPECT_EQ(SpaceSize(s), 6 * (1 + 49 + 2) * rest);
}

// Conditions on an architecture choice: a parameter active only for some of the kind's values
// (here the MLP's depth, and an NB201 edge's operation), validated against the choices' values.
TEST(ParametersTest, ConditionsOnArchitectureChoices) {
  v1::SearchSpace s = Space(R"(
name: joint
mlp: {in_features: 784, num_classes: 10, depth: [1, 2], layers: [{units: [16, 32]}, {units: [16, 32]}]}
parameters:
  - {name: lr, real: {low: 1e-4, high: 1e-1, log: true}}
  - {name: dropout, real: {low: 0, high: 0.5, step: 0.1}, when: [{choice: depth, values: ["2"]}]}
  - {name: wide_lr, ordinal: {values: [1, 2]}, when: [{choice: "layers[0].units", values: ["32.0"]}]}
)");
  ASSERT_TRUE(ValidateSearchSpace(s, "search_space").ok()) << ValidateSearchSpace(s, "s");
  EXPECT_TRUE(ConditionsOnChoices(s));
  Genes g(SpaceDecisions(s).size(), 0);  // depth 1, layer 0 of 16 units
  g[3] = 7;                              // lr
  g[4] = 1;                              // dropout
  g[5] = 1;                              // wide_lr
  v1::Architecture a = DecodeArchitecture(s, g);
  EXPECT_EQ(FindParam(a, "dropout"), nullptr);
  EXPECT_EQ(FindParam(a, "wide_lr"), nullptr);
  EXPECT_EQ(CanonicalGenes(s, g)[4], 0);  // inactive: its gene does not matter
  EXPECT_EQ(CanonicalGenes(s, g)[5], 0);
  g[0] = 1;  // depth 2
  g[1] = 1;  // layer 0 of 32 units
  v1::Architecture b = DecodeArchitecture(s, g);
  ASSERT_NE(FindParam(b, "dropout"), nullptr);
  EXPECT_EQ(FindParam(b, "wide_lr")->number(), 2);
  EXPECT_TRUE(CheckInSpace(s, b, "architecture").ok()) << CheckInSpace(s, b, "architecture");
  EXPECT_EQ(EncodeArchitecture(s, b), CanonicalGenes(s, g));
  // Values that the choice does not make active are refused, named.
  v1::Architecture bad = b;
  bad.mutable_mlp()->mutable_units()->RemoveLast();  // depth 1
  EXPECT_THAT(CheckInSpace(s, bad, "architecture").message(),
              HasSubstr("'dropout' is inactive here"));
  // Every sample is consistent.
  std::mt19937_64 rng(5);
  for (int i = 0; i < 200; ++i) {
    v1::Architecture x = DecodeArchitecture(s, SampleGenes(s, rng));
    ASSERT_TRUE(CheckInSpace(s, x, "architecture").ok()) << CheckInSpace(s, x, "architecture");
    EXPECT_EQ(FindParam(x, "dropout") != nullptr, x.mlp().units_size() == 2);
    EXPECT_EQ(FindParam(x, "wide_lr") != nullptr, x.mlp().units(0) == 32);
  }
  // NB201 edges name their operations.
  v1::SearchSpace n = Space(R"y(
name: cell
nb201: {}
parameters:
  - {name: lr, real: {low: 1e-3, high: 1e-1, log: true}, when: [{choice: "cell.edge(1<-0)", values: [nor_conv_3x3]}]}
)y");
  ASSERT_TRUE(ValidateSearchSpace(n, "search_space").ok()) << ValidateSearchSpace(n, "s");
  for (int i = 0; i < 50; ++i) {
    v1::Architecture x = DecodeArchitecture(n, SampleGenes(n, rng));
    EXPECT_EQ(FindParam(x, "lr") != nullptr, x.nb201().cell().rfind("|nor_conv_3x3~0|", 0) == 0)
        << x.nb201().cell();
  }
  // Errors name the field: an unknown choice (listing the kind's), a value it lacks, both set.
  for (const auto& [when, field, text] :
       std::vector<std::tuple<std::string, std::string, std::string>>{
           {R"({choice: width, values: ["2"]})", "parameters[1].when[0].choice",
            "'width' is not a choice of the mlp space (depth, layers[0].units, layers[1].units)"},
           {R"({choice: depth, values: ["3"]})", "parameters[1].when[0].values[0]",
            "'3' is not a value of depth (1, 2)"},
           {R"({choice: depth, parameter: lr, values: ["2"]})", "parameters[1].when[0]",
            "a parameter or a choice, not both"},
       }) {
    v1::SearchSpace e = Space(absl::StrCat(R"(
name: joint
mlp: {in_features: 784, num_classes: 10, depth: [1, 2], layers: [{units: [16, 32]}, {units: [16, 32]}]}
parameters:
  - {name: lr, real: {low: 1e-4, high: 1e-1, log: true}}
  - {name: dropout, real: {low: 0, high: 0.5, step: 0.1}, when: [)",
                                           when, "]}\n"));
    absl::Status st = ValidateSearchSpace(e, "search_space");
    EXPECT_THAT(st.message(), HasSubstr("search_space." + field)) << st;
    EXPECT_THAT(st.message(), HasSubstr(text)) << st;
  }
}

// Every strategy's building blocks keep candidates valid: sampled, mutated and crossed genes
// decode to candidates that validate, lie in the space, encode back to themselves, and whose
// values are active and in bounds.
TEST(ParametersTest, SampledMutatedAndCrossedCandidatesAreValidActiveAndInBounds) {
  v1::SearchSpace s = Space(kJoint);
  std::mt19937_64 rng(7);
  std::set<std::string> hashes;
  for (int i = 0; i < 2000; ++i) {
    Genes a = SampleGenes(s, rng), b = SampleGenes(s, rng);
    for (const Genes& g : {a, MutateGenes(s, a, rng), CrossoverGenes(a, b, rng)}) {
      v1::Architecture arch = DecodeArchitecture(s, g);
      ASSERT_TRUE(CheckInSpace(s, arch, "architecture").ok())
          << CheckInSpace(s, arch, "architecture") << " " << ArchSummary(arch);
      auto back = EncodeArchitecture(s, arch);
      ASSERT_TRUE(back.has_value());
      EXPECT_EQ(ArchHash(DecodeArchitecture(s, *back)), ArchHash(arch));
      const double lr = FindParam(arch, "lr")->number();
      EXPECT_GE(lr, 1e-4);
      EXPECT_LE(lr, 0.1);
      const double bs = FindParam(arch, "batch_size")->number();
      EXPECT_EQ(bs, std::round(bs));
      EXPECT_GE(bs, 16);
      EXPECT_LE(bs, 1024);
      const bool sgd = FindParam(arch, "optimizer")->text() == "sgd";
      EXPECT_EQ(FindParam(arch, "momentum") != nullptr, sgd);
      hashes.insert(ArchHash(arch));
    }
  }
  EXPECT_GT(hashes.size(), 5000u);
}

TEST(ParametersTest, MutationMovesOrderedParametersToNeighbours) {
  v1::SearchSpace s = Space(R"(
parameters:
  - {name: depth, ordinal: {values: [1, 2, 3, 4, 5]}}
)");
  ASSERT_TRUE(ValidateSearchSpace(s, "search_space").ok());
  EXPECT_EQ(KindName(s), "none");
  EXPECT_EQ(SpaceSize(s), 5u);
  std::mt19937_64 rng(3);
  for (int i = 0; i < 200; ++i) {
    Genes p = {static_cast<int>(i % 5)};
    Genes c = MutateGenes(s, p, rng);
    EXPECT_EQ(std::abs(c[0] - p[0]), 1) << p[0] << " -> " << c[0];
  }
}

TEST(ParametersTest, APureHyperparameterJobValidatesOnTables) {
  auto spec = ParseJobSpecYaml(R"(
name: hpo
strategy: {name: evolution}
budget: {max_trials: 20}
objectives: [{metric: accuracy, direction: MAXIMIZE}]
training: {dataset: tabular}
search_space:
  name: hpo
  parameters:
    - {name: lr, ordinal: {values: [0.001, 0.01, 0.1]}}
    - {name: act, categorical: {values: [relu, tanh]}}
)");
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_TRUE(ValidateJobSpec(*spec).ok()) << ValidateJobSpec(*spec);
  v1::Architecture a = SampleArchitecture(spec->search_space(), 1);
  EXPECT_EQ(KindName(a), "none");
  EXPECT_EQ(a.params().values_size(), 2);
  EXPECT_TRUE(CheckInSpace(spec->search_space(), a, "architecture").ok());
}

TEST(ParametersTest, CandidatesWithoutParametersHashAsBefore) {
  // A space without parameters: its architectures carry no params field, so their canonical
  // text (and every stored hash) is what it was before parameters existed.
  v1::SearchSpace s =
      Space("mlp: {in_features: 784, num_classes: 10, depth: [1], layers: [{units: [8]}]}");
  v1::Architecture a = SampleArchitecture(s, 1);
  EXPECT_FALSE(a.has_params());
  EXPECT_EQ(CanonicalEncoding(a),
            R"({"mlp":{"in_features":784,"num_classes":10,"units":[8],"activation":"relu",)"
            R"("dropout":0,"batch_norm":false}})");
  // With parameters, the fast encoding agrees with protobuf's printer.
  v1::Architecture j = SampleArchitecture(Space(kJoint), 5);
  EXPECT_EQ(CanonicalEncoding(j), ProtobufCanonicalEncoding(NormalizedArchitecture(j)));
}

}  // namespace
}  // namespace nasforge
