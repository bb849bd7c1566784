// Latency on hardware targets: measurement leases routed by profile and threads, measured before
// training, cached across jobs and restarts, latency bounds rejecting candidates before training,
// expiry and retries of measurement leases, targets no worker can measure, and Pareto queries
// ranking by one target's latency.
#include <string>

#include "core/hardware_targets.h"
#include "tests/controller/job_manager_fixture.h"
#include "tests/test_util.h"

namespace nasforge {
namespace {

using ::testing::HasSubstr;

class LatencyTargetTest : public JobManagerTest {
 protected:
  // Two targets: one thread at batch 1 on cpu-1t, two threads at batch 8 on cpu-2t.
  static v1::JobSpec TwoTargets(int max_trials, int parallel = 1) {
    v1::JobSpec s = TinySpec(max_trials, parallel);
    auto* a = s.add_hardware_targets();
    a->set_profile("cpu-1t");
    a->set_threads(1);
    auto* b = s.add_hardware_targets();
    b->set_name("edge");
    b->set_profile("cpu-2t");
    b->set_batch_size(8);
    b->set_threads(2);
    return s;
  }
};

TEST_F(LatencyTargetTest, EachTargetIsMeasuredOnItsProfileBeforeTraining) {
  v1::Job job = Submit(TwoTargets(2));
  std::string trainer = RegisterAs("trainer", "cpu-1t", 1, /*measures=*/false);
  std::string one = RegisterAs("one", "cpu-1t", 1, true);
  std::string two = RegisterAs("two", "cpu-2t", 2, true);
  std::string wrong_threads = RegisterAs("wrong", "cpu-2t", 4, true);
  // The candidate exists but may not train yet; a worker that does not measure gets nothing.
  v1::LeaseTrialResponse idle = Lease(trainer);
  EXPECT_FALSE(idle.has_trial());
  EXPECT_FALSE(idle.has_measure());
  EXPECT_EQ(jm_->GetJob(job.id())->counts().queued(), 1);
  // cpu-2t with 4 threads does not match a target that asks for 2.
  EXPECT_FALSE(Lease(wrong_threads).has_measure());
  v1::LeaseTrialResponse m2 = Lease(two);
  ASSERT_TRUE(m2.has_measure());
  EXPECT_EQ(m2.measure().target().profile(), "cpu-2t");
  EXPECT_EQ(m2.measure().target().batch_size(), 8);
  EXPECT_EQ(m2.measure().target().precision(), "fp32");
  EXPECT_FALSE(m2.measure().architecture().ByteSizeLong() == 0);
  v1::LeaseTrialResponse m1 = Lease(one);
  ASSERT_TRUE(m1.has_measure());
  EXPECT_EQ(m1.measure().target().profile(), "cpu-1t");
  EXPECT_EQ(m1.measure().arch_hash(), m2.measure().arch_hash());
  ASSERT_TRUE(Measured(two, m2.measure(), 4.0).ok());
  EXPECT_FALSE(Lease(trainer).has_trial()) << "cpu-1t is not measured yet";
  // Another worker's token is refused.
  EXPECT_EQ(Measured(two, m1.measure(), 1.0).code(), absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(Measured(one, m1.measure(), 1.5).ok());
  v1::LeaseTrialResponse l = Lease(trainer);
  ASSERT_TRUE(l.has_trial());
  ASSERT_TRUE(Report(trainer, l, 0.9).ok());
  v1::Trial t = jm_->GetCandidate(job.id(), 0).value();
  EXPECT_DOUBLE_EQ(t.metrics().at("latency_ms@cpu-1t"), 1.5);
  EXPECT_DOUBLE_EQ(t.metrics().at("latency_ms@edge"), 4.0);
  EXPECT_DOUBLE_EQ(t.metrics().at("latency_p99_ms@edge"), 4.8);
  ASSERT_EQ(t.latencies_size(), 2);
  for (const auto& m : t.latencies()) {
    EXPECT_EQ(m.worker_id(), m.target() == "edge" ? two : one);
    EXPECT_FALSE(m.cached());
  }
}

TEST_F(LatencyTargetTest, AMeasuredArchitectureIsNeverMeasuredAgainAcrossJobsAndRestarts) {
  v1::JobSpec spec = TinySpec(1, 1);
  spec.add_hardware_targets()->set_profile("cpu-1t");
  Submit(spec);
  std::string w = RegisterAs("w", "cpu-1t", 1, true);
  v1::LeaseTrialResponse m = Lease(w);
  ASSERT_TRUE(m.has_measure());
  ASSERT_TRUE(Measured(w, m.measure(), 2.5).ok());
  v1::LeaseTrialResponse trained = Lease(w);  // the first job's one candidate, now measured
  ASSERT_TRUE(trained.has_trial());
  ASSERT_TRUE(Report(w, trained, 0.8).ok());
  WaitDurable();
  // Same spec and seed: the same first candidate, in a second job, after a restart. The
  // target's name differs: the cache key is the setting, not the name.
  Open();
  w = RegisterAs("w", "cpu-1t", 1, true);
  spec.mutable_hardware_targets(0)->set_name("laptop");
  spec.set_name("second");
  v1::Job second = Submit(spec);
  v1::LeaseTrialResponse l = Lease(w);
  ASSERT_TRUE(l.has_trial()) << "expected training, not a second measurement";
  EXPECT_EQ(l.arch_hash(), m.measure().arch_hash());
  v1::Trial t = jm_->GetCandidate(second.id(), 0).value();
  EXPECT_DOUBLE_EQ(t.metrics().at("latency_ms@laptop"), 2.5);
  ASSERT_EQ(t.latencies_size(), 1);
  EXPECT_TRUE(t.latencies(0).cached());
  EXPECT_EQ(t.latencies(0).worker_id(), "w");
  EXPECT_EQ(t.latencies(0).target(), "laptop");
}

TEST_F(LatencyTargetTest, ALatencyBoundRejectsBeforeTrainingWithoutSpendingTheBudget) {
  v1::JobSpec spec = TinySpec(2, 1);
  spec.add_hardware_targets()->set_profile("cpu-1t");
  auto* c = spec.add_constraints();
  c->set_metric("latency_ms@cpu-1t");
  c->set_upper(2.0);
  v1::Job job = Submit(spec);
  std::string w = RegisterAs("w", "cpu-1t", 1, true);
  int trained = 0, rejected = 0;
  for (int round = 0; round < 20 && trained < 2; ++round) {
    v1::LeaseTrialResponse l = Lease(w);
    if (l.has_measure()) {
      // Every other candidate is too slow.
      const bool slow = (round / 2) % 2 == 0;
      ASSERT_TRUE(Measured(w, l.measure(), slow ? 3.0 : 1.0).ok());
      rejected += slow;
      continue;
    }
    ASSERT_TRUE(l.has_trial());
    EXPECT_LE(jm_->GetCandidate(job.id(), l.lease().trial_id())->metrics().at("latency_ms@cpu-1t"),
              2.0);
    ASSERT_TRUE(Report(w, l, 0.8).ok());
    ++trained;
  }
  v1::Job done = jm_->GetJob(job.id()).value();
  EXPECT_EQ(trained, 2);
  EXPECT_GE(rejected, 1);
  EXPECT_EQ(done.state(), v1::JOB_SUCCEEDED);
  EXPECT_EQ(done.counts().succeeded(), 2);
  EXPECT_EQ(done.counts().rejected_by_latency(), rejected);
  EXPECT_EQ(done.counts().failed(), rejected);
  v1::Trial first = jm_->GetCandidate(job.id(), 0).value();
  EXPECT_TRUE(first.rejected());
  EXPECT_EQ(first.state(), v1::TRIAL_FAILED);
  EXPECT_THAT(first.error(), HasSubstr("latency_ms@cpu-1t = 3 ms > upper 2"));
  EXPECT_EQ(first.attempts(), 0) << "never trained";
}

TEST_F(LatencyTargetTest, BoundedTargetsAreMeasuredFirstSoARejectedCandidateCostsOneMeasurement) {
  v1::JobSpec spec = TwoTargets(1);
  auto* c = spec.add_constraints();
  c->set_metric("latency_ms@cpu-1t");
  c->set_upper(2.0);
  Submit(spec);
  std::string one = RegisterAs("one", "cpu-1t", 1, true);
  std::string two = RegisterAs("two", "cpu-2t", 2, true);
  EXPECT_FALSE(Lease(two).has_measure()) << "edge waits until the cpu-1t bound is met";
  v1::LeaseTrialResponse slow = Lease(one);
  ASSERT_TRUE(slow.has_measure());
  ASSERT_TRUE(Measured(one, slow.measure(), 3.0).ok());  // rejected: edge never measured
  EXPECT_FALSE(Lease(two).has_measure());
  v1::LeaseTrialResponse fast = Lease(one);
  ASSERT_TRUE(fast.has_measure());
  EXPECT_NE(fast.measure().arch_hash(), slow.measure().arch_hash());
  ASSERT_TRUE(Measured(one, fast.measure(), 1.0).ok());
  v1::LeaseTrialResponse edge = Lease(two);
  ASSERT_TRUE(edge.has_measure());
  EXPECT_EQ(edge.measure().arch_hash(), fast.measure().arch_hash());
  EXPECT_EQ(edge.measure().target().profile(), "cpu-2t");
}

TEST_F(LatencyTargetTest, AnExpiredMeasurementIsLeasedAgainAndFailsItsTrialAfterThreeTries) {
  v1::JobSpec spec = TinySpec(1, 1);
  spec.add_hardware_targets()->set_profile("cpu-1t");
  v1::Job job = Submit(spec);
  std::string a = RegisterAs("a", "cpu-1t", 1, true);
  std::string b = RegisterAs("b", "cpu-1t", 1, true);
  v1::LeaseTrialResponse first = Lease(a);
  ASSERT_TRUE(first.has_measure());
  EXPECT_FALSE(Lease(b).has_measure()) << "one lease per measurement";
  clock_.Advance(absl::Seconds(31));
  jm_->ExpireLeases();
  v1::LeaseTrialResponse second = Lease(b);
  ASSERT_TRUE(second.has_measure());
  EXPECT_NE(second.measure().token(), first.measure().token());
  EXPECT_EQ(Measured(a, first.measure(), 1.0).code(), absl::StatusCode::kFailedPrecondition);
  // A worker that cannot measure it says so; the third failure fails the trial.
  v1::ReportMeasurementRequest fail;
  fail.set_worker_id(b);
  fail.set_token(second.measure().token());
  fail.set_failed(true);
  fail.set_error("CUDA out of memory");
  ASSERT_TRUE(jm_->ReportMeasurement(fail).ok());
  v1::LeaseTrialResponse third = Lease(a);
  ASSERT_TRUE(third.has_measure());
  fail.set_worker_id(a);
  fail.set_token(third.measure().token());
  ASSERT_TRUE(jm_->ReportMeasurement(fail).ok());
  WaitDurable();
  v1::Trial t = jm_->GetCandidate(job.id(), 0).value();
  EXPECT_EQ(t.state(), v1::TRIAL_FAILED);
  EXPECT_FALSE(t.rejected());
  EXPECT_THAT(t.error(), HasSubstr("CUDA out of memory"));
}

TEST_F(LatencyTargetTest, ATargetNoLiveWorkerCanMeasureFailsItsTrialsWithAHint) {
  v1::JobSpec spec = TinySpec(1, 1);
  spec.add_hardware_targets()->set_profile("h200");
  v1::Job job = Submit(spec);
  std::string w = RegisterAs("w", "cpu-1t", 1, true);
  EXPECT_FALSE(Lease(w).has_trial());
  clock_.Advance(absl::Seconds(61));
  jm_->ExpireLeases();
  WaitDurable();
  v1::Trial t = jm_->GetCandidate(job.id(), 0).value();
  EXPECT_EQ(t.state(), v1::TRIAL_FAILED);
  EXPECT_THAT(t.error(), HasSubstr("no live worker of profile 'h200'"));
  EXPECT_THAT(t.error(), HasSubstr("--hardware-profile h200"));
}

TEST_F(LatencyTargetTest, AQueuedMeasurementSurvivesARestart) {
  v1::JobSpec spec = TinySpec(1, 1);
  spec.add_hardware_targets()->set_profile("cpu-1t");
  v1::Job job = Submit(spec);
  std::string w = RegisterAs("w", "cpu-1t", 1, true);
  v1::LeaseTrialResponse before = Lease(w);
  ASSERT_TRUE(before.has_measure());
  WaitDurable();
  Open();
  w = RegisterAs("w", "cpu-1t", 1, true);
  EXPECT_EQ(Measured(w, before.measure(), 1.0).code(), absl::StatusCode::kFailedPrecondition)
      << "a lease from before the restart is not honoured";
  v1::LeaseTrialResponse after = Lease(w);
  ASSERT_TRUE(after.has_measure());
  EXPECT_EQ(after.measure().arch_hash(), before.measure().arch_hash());
  ASSERT_TRUE(Measured(w, after.measure(), 1.0).ok());
  EXPECT_TRUE(Lease(w).has_trial());
}

TEST_F(LatencyTargetTest, ParetoOnAProfileRanksByThatTargetsLatency) {
  v1::JobSpec spec = TwoTargets(4, 1);
  spec.clear_objectives();
  auto* acc = spec.add_objectives();
  acc->set_metric("accuracy");
  acc->set_direction(v1::MAXIMIZE);
  auto* lat = spec.add_objectives();
  lat->set_metric("latency_ms@cpu-1t");
  lat->set_direction(v1::MINIMIZE);
  v1::Job job = Submit(spec);
  std::string one = RegisterAs("one", "cpu-1t", 1, true);
  std::string two = RegisterAs("two", "cpu-2t", 2, true);
  // Candidate i: accuracy rises with i; on cpu-1t latency rises with i (a trade-off: all on
  // the front), on edge it falls (the last candidate dominates there).
  int trained = 0;
  for (int round = 0; round < 40 && trained < 4; ++round) {
    for (const std::string& w : {one, two}) {
      v1::LeaseTrialResponse l = Lease(w);
      if (l.has_measure()) {
        const bool edge = l.measure().target().profile() == "cpu-2t";
        ASSERT_TRUE(Measured(w, l.measure(), edge ? 10.0 - trained : 1.0 + trained).ok());
      } else if (l.has_trial()) {
        ASSERT_TRUE(Report(w, l, 0.5 + 0.1 * l.lease().trial_id()).ok());
        ++trained;
      }
    }
  }
  ASSERT_EQ(trained, 4);
  v1::QueryParetoRequest q;
  q.set_job_id(job.id());
  q.add_objectives()->set_metric("accuracy");
  q.mutable_objectives(0)->set_direction(v1::MAXIMIZE);
  q.add_objectives()->set_metric("latency_ms");
  q.mutable_objectives(1)->set_direction(v1::MINIMIZE);
  q.set_hardware_profile("cpu-1t");
  EXPECT_EQ(jm_->QueryPareto(q)->trials_size(), 4);
  q.set_hardware_profile("cpu-2t");  // the profile of the target named "edge"
  auto edge = jm_->QueryPareto(q).value();
  ASSERT_EQ(edge.trials_size(), 1);
  EXPECT_EQ(edge.trials(0).id(), 3);
  // A bound on the profile's latency: latency_ms <= 8 on edge keeps the last two.
  q.set_hardware_profile("edge");
  q.clear_objectives();
  auto* where = q.add_constraints();
  where->set_metric("latency_ms");
  where->set_upper(8.0);
  auto bounded = jm_->QueryPareto(q).value();
  EXPECT_EQ(bounded.considered(), 2);
  // A target the job does not have is an error naming the field.
  q.clear_hardware_profile();
  where->set_metric("latency_ms@nowhere");
  auto bad = jm_->QueryPareto(q);
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(bad.status().message(), HasSubstr("constraints[0].metric"));
  EXPECT_THAT(bad.status().message(), HasSubstr("cpu-1t, edge"));
}

TEST_F(LatencyTargetTest, BadTargetsAreRefusedNamingTheField) {
  auto submit = [&](const v1::JobSpec& spec) {
    v1::SubmitJobRequest r;
    *r.mutable_spec() = spec;
    return jm_->SubmitJob(r).status();
  };
  v1::JobSpec no_profile = TinySpec(1);
  no_profile.add_hardware_targets()->set_batch_size(4);
  EXPECT_THAT(submit(no_profile).message(), HasSubstr("hardware_targets[0].profile"));
  v1::JobSpec twice = TinySpec(1);
  twice.add_hardware_targets()->set_profile("cpu-1t");
  twice.add_hardware_targets()->set_profile("cpu-1t");
  EXPECT_THAT(submit(twice).message(), HasSubstr("hardware_targets[1].name"));
  v1::JobSpec precision = TinySpec(1);
  precision.add_hardware_targets()->set_profile("h200");
  precision.mutable_hardware_targets(0)->set_precision("int3");
  EXPECT_THAT(submit(precision).message(), HasSubstr("hardware_targets[0].precision"));
  v1::JobSpec unknown = TinySpec(1);
  unknown.add_hardware_targets()->set_profile("h200");
  auto* c = unknown.add_constraints();
  c->set_metric("latency_ms@h100");
  c->set_upper(1);
  absl::Status st = submit(unknown);
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(st.message(), HasSubstr("constraints[0].metric"));
  EXPECT_THAT(st.message(), HasSubstr("its targets: h200"));
}

}  // namespace
}  // namespace nasforge
