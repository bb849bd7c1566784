// Scripted learning curves give deterministic decisions for each rule.
#include "core/early_stopping.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace nasforge {
namespace {

using Curve = google::protobuf::RepeatedPtrField<v1::CurvePoint>;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

Curve Make(std::vector<double> values) {
  Curve c;
  for (size_t i = 0; i < values.size(); ++i) {
    auto* p = c.Add();
    p->set_epoch(static_cast<int>(i) + 1);
    p->set_value(values[i]);
  }
  return c;
}

struct Fixture {
  v1::EarlyStopping rule;
  std::vector<Curve> done, running;
  StopDecision Run(const Curve& mine, int max_epochs, bool on_front = false) {
    StoppingInput in;
    in.rule = &rule;
    in.max_epochs = max_epochs;
    in.curve = &mine;
    for (auto& c : done) in.completed.push_back(&c);
    for (auto& c : running) in.others.push_back(&c);
    in.on_cost_front = on_front;
    return Decide(in);
  }
};

TEST(EarlyStoppingTest, NoneNeverStops) {
  Fixture f;
  f.done = {Make({0.9, 0.95}), Make({0.9, 0.95}), Make({0.9, 0.95})};
  EXPECT_FALSE(f.Run(Make({0.1}), 10).stop);
  f.rule.set_rule("none");
  EXPECT_FALSE(f.Run(Make({0.1}), 10).stop);
}

TEST(EarlyStoppingTest, MedianRuleStopsBelowTheMedianOfRunningAverages) {
  Fixture f;
  f.rule.set_rule("median");
  f.rule.set_grace_epochs(2);
  f.rule.set_min_completed(3);
  // Running averages at epoch 2: 0.55, 0.65, 0.75 -> median 0.65.
  f.done = {Make({0.5, 0.6, 0.7}), Make({0.6, 0.7, 0.8}), Make({0.7, 0.8, 0.9})};
  EXPECT_FALSE(f.Run(Make({0.1}), 5).stop) << "inside the grace period";
  auto d = f.Run(Make({0.60, 0.64}), 5);
  EXPECT_TRUE(d.stop);
  EXPECT_THAT(d.reason, HasSubstr("median 0.6500"));
  EXPECT_FALSE(f.Run(Make({0.60, 0.66}), 5).stop);
  EXPECT_FALSE(f.Run(Make({0.70, 0.10}), 5).stop) << "best value so far counts, not the last";
  EXPECT_FALSE(f.Run(Make({0.1, 0.1, 0.1, 0.1, 0.1}), 5).stop) << "last epoch: nothing to save";
}

TEST(EarlyStoppingTest, MedianRuleWaitsForEnoughCompletedTrials) {
  Fixture f;
  f.rule.set_rule("median");
  f.done = {Make({0.9, 0.9}), Make({0.9, 0.9})};  // default min_completed 3
  EXPECT_FALSE(f.Run(Make({0.1}), 5).stop);
  f.done.push_back(Make({0.9, 0.9}));
  EXPECT_TRUE(f.Run(Make({0.1}), 5).stop);
  // Completed trials that never reached epoch t do not count at t.
  f.done = {Make({0.9}), Make({0.9}), Make({0.9})};
  EXPECT_FALSE(f.Run(Make({0.1, 0.1}), 5).stop);
}

TEST(EarlyStoppingTest, AshaRungs) {
  EXPECT_THAT(AshaRungs(1, 3, 27), ElementsAre(1, 3, 9));
  EXPECT_THAT(AshaRungs(2, 2, 10), ElementsAre(2, 4, 8));
  EXPECT_THAT(AshaRungs(1, 3, 1), ElementsAre());
}

TEST(EarlyStoppingTest, AshaPromotesTheTopOneOverEtaAtEachRung) {
  Fixture f;
  f.rule.set_rule("asha");
  f.rule.set_min_epochs(1);
  f.rule.set_eta(3);
  EXPECT_FALSE(f.Run(Make({0.2}), 9).stop) << "the first trial at a rung is promoted";
  f.done = {Make({0.5, 0.6, 0.7}), Make({0.4, 0.5, 0.6})};
  f.running = {Make({0.3}), Make({0.45}), Make({0.35})};
  // Rung 1 holds 0.5 0.4 0.3 0.45 0.35 and ours: 6 values, top 2 = {0.5, 0.45 or ours}.
  EXPECT_TRUE(f.Run(Make({0.44}), 9).stop);
  EXPECT_FALSE(f.Run(Make({0.47}), 9).stop);
  EXPECT_FALSE(f.Run(Make({0.1, 0.1}), 9).stop) << "epoch 2 is not a rung";
  // Rung 3: only the two finished trials reached it (0.7, 0.6) plus ours: top 1 continues.
  EXPECT_TRUE(f.Run(Make({0.5, 0.6, 0.65}), 9).stop);
  EXPECT_FALSE(f.Run(Make({0.5, 0.6, 0.75}), 9).stop);
}

TEST(EarlyStoppingTest, HyperbandBracketsStartTheirRungsLater) {
  // min 1, eta 3, 27 epochs: rungs 1, 3, 9 -> 4 brackets (rungs from 1, 3, 9, none).
  EXPECT_EQ(HyperbandBracket(0, 1, 3, 27), 0);
  EXPECT_EQ(HyperbandBracket(5, 1, 3, 27), 1);
  EXPECT_EQ(HyperbandBracket(7, 1, 3, 27), 3);
  Fixture f;
  f.rule.set_rule("hyperband");
  f.rule.set_min_epochs(1);
  f.rule.set_eta(3);
  // Bracket 0 peers (ids 0, 4, 8) are strong at epoch 1; a bracket-1 peer (id 1) is weak.
  f.done = {Make({0.9, 0.9, 0.9}), Make({0.8, 0.8, 0.8}), Make({0.85, 0.85, 0.85}),
            Make({0.1, 0.1, 0.1})};
  f.rule.set_grace_epochs(0);
  auto run = [&](int64_t id, const Curve& mine) {
    StoppingInput in;
    in.rule = &f.rule;
    in.max_epochs = 27;
    in.curve = &mine;
    in.trial_id = id;
    for (auto& c : f.done) in.completed.push_back(&c);
    in.completed_ids = {0, 4, 8, 1};
    return Decide(in);
  };
  EXPECT_TRUE(run(12, Make({0.5})).stop) << "bracket 0: rung at epoch 1 against 0.9 0.8 0.85";
  EXPECT_FALSE(run(13, Make({0.5})).stop) << "bracket 1 has no rung at epoch 1";
  EXPECT_TRUE(run(13, Make({0.5, 0.5, 0.05})).stop) << "bracket 1: rung at epoch 3 vs id 1";
  auto d = run(13, Make({0.5, 0.5, 0.05}));
  EXPECT_THAT(d.reason, HasSubstr("hyperband bracket 1"));
  EXPECT_FALSE(run(15, Make({0.0, 0.0, 0.0})).stop) << "bracket 3 trains to the end";
}

TEST(EarlyStoppingTest, CostFrontProtectsUnlessDisabled) {
  Fixture f;
  f.rule.set_rule("median");
  f.done = {Make({0.9, 0.9}), Make({0.9, 0.9}), Make({0.9, 0.9})};
  auto kept = f.Run(Make({0.1}), 5, /*on_front=*/true);
  EXPECT_FALSE(kept.stop);
  EXPECT_THAT(kept.reason, HasSubstr("kept: on the cost front"));
  f.rule.set_keep_cost_front(false);
  EXPECT_TRUE(f.Run(Make({0.1}), 5, /*on_front=*/true).stop);
}

TEST(EarlyStoppingTest, ValidationNamesTheField) {
  v1::EarlyStopping es;
  es.set_rule("bohb");
  EXPECT_THAT(ValidateEarlyStopping(es, 10, "early_stopping").message(),
              HasSubstr("early_stopping.rule: 'bohb' is not one of"));
  es.set_rule("asha");
  es.set_eta(1);
  EXPECT_THAT(ValidateEarlyStopping(es, 10, "early_stopping").message(),
              HasSubstr("early_stopping.eta: 1 is out of range"));
  es.set_eta(3);
  es.set_min_epochs(20);
  EXPECT_THAT(ValidateEarlyStopping(es, 10, "early_stopping").message(),
              HasSubstr("early_stopping.min_epochs"));
  es.set_min_epochs(1);
  EXPECT_TRUE(ValidateEarlyStopping(es, 10, "early_stopping").ok());
}

}  // namespace
}  // namespace nasforge
