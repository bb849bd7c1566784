// Trial states: JobCounts' field numbers are the TrialState values (what counting relies on),
// labels, terminal states, counting.
#include "core/trial_state.h"

#include "absl/strings/ascii.h"
#include "gtest/gtest.h"

namespace nasforge {
namespace {

TEST(TrialStateTest, EveryStateHasItsCountFieldOfTheSameName) {
  ASSERT_EQ(TrialStates().size(), 6u);
  for (v1::TrialState s : TrialStates()) {
    const auto* f = v1::JobCounts::descriptor()->FindFieldByNumber(s);
    ASSERT_NE(f, nullptr) << v1::TrialState_Name(s);
    EXPECT_EQ(f->name(), TrialStateLabel(s));
  }
  EXPECT_EQ(TrialStateLabel(v1::TRIAL_QUEUED), "queued");
}

TEST(TrialStateTest, CountsFollowTheStates) {
  std::vector<v1::Trial> trials(5);
  trials[0].set_state(v1::TRIAL_SUCCEEDED);
  trials[1].set_state(v1::TRIAL_SUCCEEDED);
  trials[2].set_state(v1::TRIAL_RUNNING);
  trials[3].set_state(v1::TRIAL_CANCELLED);
  trials[4].set_state(v1::TRIAL_QUEUED);
  v1::JobCounts before;
  before.set_rejected_by_cost(7);
  before.set_failed(3);  // recounted, not kept
  v1::JobCounts c = CountTrials(trials, before);
  EXPECT_EQ(c.succeeded(), 2);
  EXPECT_EQ(c.running(), 1);
  EXPECT_EQ(c.cancelled(), 1);
  EXPECT_EQ(c.queued(), 1);
  EXPECT_EQ(c.failed(), 0);
  EXPECT_EQ(c.rejected_by_cost(), 7);
  EXPECT_EQ(CountOf(c, v1::TRIAL_SUCCEEDED), 2);
  v1::JobCounts sum;
  AddCounts(c, &sum);
  AddCounts(c, &sum);
  EXPECT_EQ(sum.succeeded(), 4);
  EXPECT_EQ(sum.rejected_by_cost(), 14);
  EXPECT_TRUE(TrialTerminal(v1::TRIAL_STOPPED));
  EXPECT_FALSE(TrialTerminal(v1::TRIAL_RUNNING));
  EXPECT_TRUE(JobTerminal(v1::JOB_CANCELLED));
  EXPECT_FALSE(JobTerminal(v1::JOB_RUNNING));
}

TEST(TrialStateTest, IncrementalCountsMatchARecount) {
  std::vector<v1::Trial> trials(4);
  v1::JobCounts c;
  for (auto& t : trials) {
    t.set_state(v1::TRIAL_QUEUED);
    AddToCount(&c, v1::TRIAL_QUEUED, +1);
  }
  auto move = [&](v1::Trial& t, v1::TrialState to) {
    AddToCount(&c, t.state(), -1);
    AddToCount(&c, to, +1);
    t.set_state(to);
  };
  move(trials[0], v1::TRIAL_RUNNING);
  move(trials[0], v1::TRIAL_SUCCEEDED);
  move(trials[1], v1::TRIAL_RUNNING);
  move(trials[2], v1::TRIAL_CANCELLED);
  EXPECT_EQ(c.DebugString(), CountTrials(trials, v1::JobCounts()).DebugString());
  EXPECT_EQ(c.queued(), 1);
  AddToCount(&c, v1::TRIAL_STATE_UNSPECIFIED, 5);  // no such count: ignored
  EXPECT_EQ(c.DebugString(), CountTrials(trials, v1::JobCounts()).DebugString());
}

}  // namespace
}  // namespace nasforge
