// Every strategy on small deterministic cases: reproducibility, rebuilding from history,
// no duplicates, and each algorithm's defining behaviour.
#include <cmath>
#include <cstdint>
#include <set>
#include <string>

#include "core/cost.h"
#include "core/jobspec.h"
#include "core/nb201.h"
#include "core/parameters.h"
#include "core/scaling.h"
#include "core/search_space.h"
#include "core/strategies/gp.h"
#include "core/strategies/strategy.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/test_util.h"

namespace nasforge {
namespace {

using ::testing::HasSubstr;

v1::JobSpec Spec(const std::string& strategy, uint64_t seed, bool two_objectives = false) {
  v1::JobSpec s;
  *s.mutable_search_space() = testing::LoadSpace("nb201_cifar.yaml");
  s.mutable_strategy()->set_name(strategy);
  s.mutable_budget()->set_seed(seed);
  auto* o = s.add_objectives();
  o->set_metric("accuracy");
  o->set_direction(v1::MAXIMIZE);
  if (two_objectives) {
    auto* p = s.add_objectives();
    p->set_metric("params");
    p->set_direction(v1::MINIMIZE);
  }
  return s;
}

// A deterministic oracle over NB201 cells: additive per-edge values (the 3x3 conv is best on
// every edge), so the optimum is the all-3x3 cell.
double Oracle(const v1::Architecture& a) {
  if (!a.has_nb201()) return 0;
  auto ops = ParseNB201Cell(a.nb201().cell());
  static const std::map<std::string, double> value = {{"none", 0.0},
                                                      {"skip_connect", 1.0},
                                                      {"nor_conv_1x1", 2.0},
                                                      {"nor_conv_3x3", 3.5},
                                                      {"avg_pool_3x3", 0.5}};
  double s = 0;
  for (int e = 0; e < 6; ++e) s += value.at((*ops)[e]) * (1 + 0.1 * e);
  return s;
}

v1::Trial Result(int64_t id, const v1::Architecture& a) {
  v1::Trial t;
  t.set_id(id);
  *t.mutable_architecture() = a;
  t.set_state(v1::TRIAL_SUCCEEDED);
  (*t.mutable_metrics())["accuracy"] = Oracle(a);
  (*t.mutable_metrics())["params"] = static_cast<double>(ComputeCost(a).params);
  return t;
}

// Runs `n` ask/tell rounds; returns the proposals' hashes (and the trials told).
std::vector<std::string> AskTell(Strategy& s, int n, std::vector<v1::Trial>* told = nullptr,
                                 std::set<std::string>* seen_in = nullptr) {
  std::set<std::string> local;
  std::set<std::string>& seen = seen_in ? *seen_in : local;
  std::vector<std::string> out;
  for (int i = 0; i < n; ++i) {
    Proposal p =
        s.Ask([&](const v1::Architecture& a) { return seen.insert(ArchHash(a)).second; }, 100);
    EXPECT_EQ(p.kind, Proposal::Kind::kCandidate) << p.reason;
    if (p.kind != Proposal::Kind::kCandidate) break;
    out.push_back(ArchHash(p.arch));
    v1::Trial t = Result(i, p.arch);
    s.Tell(t);
    if (told) told->push_back(t);
  }
  return out;
}

class EveryStrategyTest : public ::testing::TestWithParam<std::string> {};

TEST_P(EveryStrategyTest, SameSeedSameProposalsAndNoDuplicates) {
  auto a = NewStrategy(Spec(GetParam(), 7, GetParam() == "nsga2"), 0).value();
  auto b = NewStrategy(Spec(GetParam(), 7, GetParam() == "nsga2"), 0).value();
  auto c = NewStrategy(Spec(GetParam(), 8, GetParam() == "nsga2"), 0).value();
  auto first = AskTell(*a, 40);
  EXPECT_EQ(first, AskTell(*b, 40));
  EXPECT_NE(first, AskTell(*c, 40));
  EXPECT_EQ(std::set<std::string>(first.begin(), first.end()).size(), first.size());
}

TEST_P(EveryStrategyTest, RebuiltFromHistoryContinuesTheSameSequence) {
  const v1::JobSpec spec = Spec(GetParam(), 3, GetParam() == "nsga2");
  auto original = NewStrategy(spec, 0).value();
  std::vector<v1::Trial> told;
  std::set<std::string> seen;
  AskTell(*original, 30, &told, &seen);
  // A restarted controller: the stored position, then the finished trials in order.
  auto rebuilt = NewStrategy(spec, original->position()).value();
  for (const auto& t : told) rebuilt->Tell(t);
  std::set<std::string> seen2 = seen;
  EXPECT_EQ(AskTell(*original, 10, nullptr, &seen), AskTell(*rebuilt, 10, nullptr, &seen2));
}

// Mixed spaces (an architecture with hyperparameters of every domain, conditional on another
// parameter and on an architecture choice): every
// strategy proposes only candidates that lie in the space -- valid, each active parameter at
// one of its values and in bounds, no inactive one -- and never the same one twice.
TEST_P(EveryStrategyTest, MixedSpaceProposalsAreValidActiveAndInBounds) {
  v1::JobSpec spec = Spec(GetParam(), 5, GetParam() == "nsga2");
  spec.mutable_search_space()->Clear();
  ASSERT_TRUE(YamlToMessage(R"(
name: mixed
mlp: {in_features: 784, num_classes: 10, depth: [1, 2], layers: [{units: [16, 32, 64]}, {units: [16, 32, 64]}]}
parameters:
  - {name: optimizer, categorical: {values: [adamw, sgd]}}
  - {name: learning_rate, real: {low: 1e-4, high: 0.1, log: true}}
  - {name: momentum, real: {low: 0.5, high: 0.99, levels: 50}, when: [{parameter: optimizer, values: [sgd]}]}
  - {name: batch_size, integer: {low: 16, high: 512, log: true}}
  - {name: dropout, real: {low: 0, high: 0.5, step: 0.1}}
  - {name: warmup_epochs, ordinal: {values: [0, 1, 2, 5]}}
  - {name: second_dropout, real: {low: 0, high: 0.5, step: 0.1}, when: [{choice: depth, values: ["2"]}]}
)",
                            spec.mutable_search_space())
                  .ok());
  auto s = NewStrategy(spec, 0).value();
  std::set<std::string> seen;
  for (int i = 0; i < 60; ++i) {
    Proposal p =
        s->Ask([&](const v1::Architecture& a) { return seen.insert(ArchHash(a)).second; }, 100);
    ASSERT_EQ(p.kind, Proposal::Kind::kCandidate) << p.reason;
    ASSERT_TRUE(CheckInSpace(spec.search_space(), p.arch, "architecture").ok())
        << CheckInSpace(spec.search_space(), p.arch, "architecture") << " " << ArchSummary(p.arch);
    const v1::ParamValue* lr = FindParam(p.arch, "learning_rate");
    ASSERT_NE(lr, nullptr);
    EXPECT_GE(lr->number(), 1e-4);
    EXPECT_LE(lr->number(), 0.1);
    const bool sgd = FindParam(p.arch, "optimizer")->text() == "sgd";
    EXPECT_EQ(FindParam(p.arch, "momentum") != nullptr, sgd);
    EXPECT_EQ(FindParam(p.arch, "second_dropout") != nullptr, p.arch.mlp().units_size() == 2);
    // A smooth function of the values, so model-based strategies have something to learn.
    v1::Trial t;
    t.set_id(i);
    *t.mutable_architecture() = p.arch;
    t.set_state(v1::TRIAL_SUCCEEDED);
    const double x = std::log10(lr->number()) + 2.5;
    (*t.mutable_metrics())["accuracy"] = 1 - x * x - (sgd ? 0.1 : 0);
    (*t.mutable_metrics())["params"] = static_cast<double>(ComputeCost(p.arch).params);
    s->Tell(t);
  }
}

INSTANTIATE_TEST_SUITE_P(Strategies, EveryStrategyTest,
                         ::testing::Values("random", "evolution", "nsga2", "bo", "tpe", "bohb"));

TEST(StrategyTest, RandomSkipsInadmissibleProposalsWithinItsAttempts) {
  auto s = NewStrategy(Spec("random", 1), 0).value();
  int calls = 0;
  auto every_third = [&](const v1::Architecture&) { return ++calls % 3 == 0; };
  EXPECT_EQ(s->Ask(every_third, 5).kind, Proposal::Kind::kCandidate);
  EXPECT_EQ(calls, 3);
  EXPECT_EQ(s->position(), 3u);
  Proposal p = s->Ask([](const v1::Architecture&) { return false; }, 4);
  EXPECT_EQ(p.kind, Proposal::Kind::kDone);
  EXPECT_THAT(p.reason, HasSubstr("search space exhausted"));
}

TEST(StrategyTest, UnknownStrategyAndBadOptionsAreFieldErrors) {
  v1::JobSpec spec = Spec("simulated-annealing", 1);
  EXPECT_THAT(
      std::string(ValidateStrategy(spec).message()),
      HasSubstr("strategy.name: 'simulated-annealing' is not one of bo, bohb, compound_scaling, "
                "evolution, nsga2, random"));
  spec = Spec("evolution", 1);
  spec.mutable_strategy()->set_population(10);
  spec.mutable_strategy()->set_sample_size(11);
  EXPECT_THAT(std::string(ValidateStrategy(spec).message()),
              HasSubstr("strategy.sample_size: 11 must be in [1, population]"));
  EXPECT_THAT(std::string(ValidateStrategy(Spec("nsga2", 1)).message()),
              HasSubstr("objectives: nsga2 needs at least two objectives"));
}

// Regularized evolution: once the population is full, every proposal is a member with one
// decision changed.
TEST(StrategyTest, EvolutionMutatesOneDecisionOfAPopulationMember) {
  v1::JobSpec spec = Spec("evolution", 5);
  spec.mutable_strategy()->set_population(10);
  spec.mutable_strategy()->set_sample_size(3);
  auto s = NewStrategy(spec, 0).value();
  std::vector<v1::Trial> told;
  AskTell(*s, 10, &told);
  std::set<std::string> seen;
  for (const auto& t : told) seen.insert(ArchHash(t.architecture()));
  for (int i = 0; i < 20; ++i) {
    Proposal p =
        s->Ask([&](const v1::Architecture& a) { return seen.insert(ArchHash(a)).second; }, 100);
    ASSERT_EQ(p.kind, Proposal::Kind::kCandidate);
    Genes child = *EncodeArchitecture(spec.search_space(), p.arch);
    // The population is the last 10 told (aging).
    bool one_step = false;
    for (size_t k = told.size() - 10; k < told.size(); ++k) {
      Genes parent = *EncodeArchitecture(spec.search_space(), told[k].architecture());
      int diff = 0;
      for (size_t d = 0; d < child.size(); ++d) diff += child[d] != parent[d];
      one_step |= diff == 1;
    }
    EXPECT_TRUE(one_step) << p.arch.nb201().cell();
    told.push_back(Result(static_cast<int64_t>(told.size()), p.arch));
    s->Tell(told.back());
  }
}

// Evolution and BO beat random search on the additive oracle at equal queries.
TEST(StrategyTest, ModelAndEvolutionFindBetterCellsThanRandomSearch) {
  auto best_after = [](const std::string& name, uint64_t seed, int n) {
    auto s = NewStrategy(Spec(name, seed), 0).value();
    std::vector<v1::Trial> told;
    AskTell(*s, n, &told);
    double best = -1;
    for (const auto& t : told) best = std::max(best, t.metrics().at("accuracy"));
    return best;
  };
  double optimum = 0;
  for (int e = 0; e < 6; ++e) optimum += 3.5 * (1 + 0.1 * e);
  double random = 0, rea = 0, bo = 0, tpe = 0, bohb = 0;
  for (uint64_t seed = 1; seed <= 5; ++seed) {
    random += best_after("random", seed, 40) / 5;
    rea += best_after("evolution", seed, 40) / 5;
    bo += best_after("bo", seed, 40) / 5;
    tpe += best_after("tpe", seed, 40) / 5;
    bohb += best_after("bohb", seed, 40) / 5;  // no curves: TPE on finished trainings
  }
  EXPECT_GT(rea, random);
  EXPECT_GT(bo, random);
  EXPECT_GT(tpe, random);
  EXPECT_GT(bohb, random);
  EXPECT_NEAR(bo, optimum, 1e-9);  // an additive function is easy for the GP
}

// NSGA-II with a params bound: Deb's constraint handling steers proposals into the feasible
// region.
TEST(StrategyTest, Nsga2PrefersFeasibleCandidates) {
  v1::JobSpec spec = Spec("nsga2", 2, /*two_objectives=*/true);
  spec.mutable_strategy()->set_population(10);
  auto* c = spec.add_constraints();
  c->set_metric("params");
  c->set_upper(400000);
  auto s = NewStrategy(spec, 0).value();
  std::vector<v1::Trial> told;
  AskTell(*s, 80, &told);
  auto feasible = [&](int from, int to) {
    int n = 0;
    for (int i = from; i < to; ++i) n += told[i].metrics().at("params") <= 400000;
    return n;
  };
  EXPECT_GT(feasible(60, 80), feasible(0, 20));
  EXPECT_GE(feasible(60, 80), 15);
}

TEST(GaussianProcessTest, InterpolatesDataAndLearnsWhichDecisionsMatter) {
  // y depends on decision 0 only.
  std::vector<Genes> x;
  std::vector<double> y;
  std::mt19937_64 rng(1);
  for (int i = 0; i < 40; ++i) {
    Genes g = {static_cast<int>(rng() % 5), static_cast<int>(rng() % 5),
               static_cast<int>(rng() % 5)};
    x.push_back(g);
    y.push_back(g[0] * 1.0);
  }
  CategoricalGP gp(3);
  gp.Fit(x, y, 100);
  double mu, sd;
  gp.Predict(x[0], &mu, &sd);
  EXPECT_NEAR(mu, y[0], 0.1);
  EXPECT_GT(gp.weights()[0], 3 * gp.weights()[1]);
  EXPECT_GT(gp.weights()[0], 3 * gp.weights()[2]);
  gp.Predict({4, 0, 0}, &mu, &sd);
  EXPECT_NEAR(mu, 4.0, 0.3);
  // EI: no improvement possible with zero spread below the incumbent; positive with spread.
  EXPECT_EQ(ExpectedImprovement(1.0, 0.0, 2.0), 0.0);
  EXPECT_GT(ExpectedImprovement(1.0, 1.0, 2.0), 0.0);
  EXPECT_NEAR(ExpectedImprovement(2.0, 1.0, 2.0), 1.0 / std::sqrt(2 * M_PI), 1e-9);
}

TEST(ScalingTest, DepthRoundsUpWidthRoundsToTheDivisorResolutionRounds) {
  v1::Architecture b0 = testing::LoadReference("efficientnet_b0.yaml");
  // EfficientNet-B1 is B0 with depth 1.1, width 1.0, resolution 240.
  auto b1 = ScaleArchitecture(b0, 1.1, 1.0, 240.0 / 224);
  ASSERT_TRUE(b1.ok());
  EXPECT_EQ(b1->mbconv().resolution(), 240);
  std::vector<int> repeats;
  for (const auto& st : b1->mbconv().stages()) repeats.push_back(st.repeats());
  EXPECT_EQ(repeats, (std::vector<int>{2, 3, 3, 4, 4, 5, 2}));  // ceil(1.1 * [1,2,2,3,3,4,1])
  // torchvision's efficientnet_b1 has 7,794,184 parameters.
  EXPECT_EQ(ComputeCost(*b1).params, 7794184);
  auto wide = ScaleArchitecture(b0, 1.0, 1.2, 1.0);
  EXPECT_EQ(wide->mbconv().stem_channels(), 40);       // 38.4 -> 40
  EXPECT_EQ(wide->mbconv().stages(0).channels(), 24);  // 19.2 -> 24 (16 is > 10% below)
}

v1::JobSpec ScalingSpec() {
  v1::JobSpec s = Spec("compound_scaling", 1);
  *s.mutable_search_space() = testing::LoadSmallSpace();
  auto* c = s.mutable_strategy()->mutable_compound_scaling();
  for (double a : {1.0, 1.2, 1.4}) c->add_alpha(a);
  for (double b : {1.0, 1.1}) c->add_beta(b);
  for (double g : {1.0, 1.15, 1.2}) c->add_gamma(g);
  c->set_max_phi(3);
  c->set_width_divisor(4);
  return s;
}

TEST(CompoundScalingTest, GridThenWaitThenScalesTheBestTriple) {
  v1::JobSpec spec = ScalingSpec();
  ASSERT_TRUE(ValidateStrategy(spec).ok()) << ValidateStrategy(spec);
  auto s = NewStrategy(spec, 0).value();
  std::set<std::string> seen;
  auto admissible = [&](const v1::Architecture& a) { return seen.insert(ArchHash(a)).second; };
  // alpha*beta^2*gamma^2 within 5% of 2: (1.2,1.1,1.15)=1.92, (1.2,1.1,1.2)=2.09,
  // (1.4,1.0,1.2)=2.02; not (1.0,1.1,1.2)=1.74, (1.4,1.1,1.15)=2.24, ... -> base + 3 points.
  std::vector<v1::Trial> step1;
  for (int i = 0; i < 4; ++i) {
    Proposal p = s->Ask(admissible, 10);
    ASSERT_EQ(p.kind, Proposal::Kind::kCandidate) << i << " " << p.reason;
    step1.push_back(Result(i, p.arch));
  }
  EXPECT_EQ(s->Ask(admissible, 10).kind, Proposal::Kind::kWait);
  // Score: the third grid point (1.4, 1.0, 1.2) best.
  for (int i = 0; i < 4; ++i) {
    (*step1[i].mutable_metrics())["accuracy"] = i == 3 ? 0.9 : 0.5;
    s->Tell(step1[i]);
    if (i < 3) {
      EXPECT_EQ(s->Ask(admissible, 10).kind, Proposal::Kind::kWait);
    }
  }
  v1::Architecture base = step1[0].architecture();
  for (int phi = 2; phi <= 3; ++phi) {
    Proposal p = s->Ask(admissible, 10);
    ASSERT_EQ(p.kind, Proposal::Kind::kCandidate);
    auto want = ScaleArchitecture(base, std::pow(1.4, phi), 1.0, std::pow(1.2, phi), 4);
    EXPECT_EQ(ArchHash(p.arch), ArchHash(*want)) << phi;
  }
  Proposal done = s->Ask(admissible, 10);
  EXPECT_EQ(done.kind, Proposal::Kind::kDone);
  EXPECT_THAT(done.reason, HasSubstr("alpha=1.4 beta=1 gamma=1.2"));
}

TEST(CompoundScalingTest, EmptyGridIsAFieldError) {
  v1::JobSpec spec = ScalingSpec();
  spec.mutable_strategy()->mutable_compound_scaling()->set_target(9);
  EXPECT_THAT(std::string(ValidateStrategy(spec).message()),
              HasSubstr("strategy.compound_scaling: no (alpha, beta, gamma)"));
}

}  // namespace
}  // namespace nasforge
