// JobManager's worker protocol on a real SQLite store with a fake clock: leases and their
// fencing tokens, heartbeats, failures and retries, hand-back, steady-clock deadlines, report
// checks, placement by declared memory, restarted workers and unplaceable trials.
#include <cstdint>
#include <string>

#include "tests/controller/job_manager_fixture.h"

namespace nasforge {
namespace {

using ::testing::HasSubstr;

TEST_F(JobManagerTest, ExpiredLeaseIsRequeuedAndTheOldTokenFenced) {
  v1::Job job = Submit(TinySpec(1));
  std::string a = Register("a"), b = Register("b");
  auto first = Lease(a);
  ASSERT_TRUE(first.has_trial());
  clock_.Advance(absl::Seconds(31));
  jm_->ExpireLeases();
  EXPECT_EQ(jm_->GetJob(job.id())->counts().queued(), 1);
  auto second = Lease(b);
  ASSERT_TRUE(second.has_trial());
  EXPECT_EQ(second.lease().trial_id(), first.lease().trial_id());
  EXPECT_EQ(second.lease().epoch(), 2u);
  // The late worker's heartbeat and report are rejected and never counted.
  v1::HeartbeatRequest hb;
  hb.set_worker_id(a);
  *hb.mutable_lease() = first.lease();
  auto h = jm_->Heartbeat(hb);
  EXPECT_EQ(h.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(h.status().message(), HasSubstr("stale lease"));
  EXPECT_EQ(Report(a, first, 0.99).code(), absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(Report(b, second, 0.7).ok());
  auto done = jm_->GetJob(job.id()).value();
  EXPECT_EQ(done.counts().succeeded(), 1);
  EXPECT_DOUBLE_EQ(done.best_objective(), 0.7);
}

TEST_F(JobManagerTest, HeartbeatIntervalFitsTheLease) {
  v1::JobSpec spec = TinySpec(2);
  spec.set_lease_seconds(6);
  Submit(spec);
  std::string w = Register("w");
  EXPECT_EQ(Lease(w).heartbeat_seconds(), 2);  // a third of the lease
  Submit(TinySpec(2));
}

TEST_F(JobManagerTest, HeartbeatsKeepALeaseAlive) {
  Submit(TinySpec(1));
  std::string w = Register("w");
  auto l = Lease(w);
  for (int i = 0; i < 5; ++i) {
    clock_.Advance(absl::Seconds(20));
    v1::HeartbeatRequest hb;
    hb.set_worker_id(w);
    *hb.mutable_lease() = l.lease();
    ASSERT_TRUE(jm_->Heartbeat(hb).ok());
    jm_->ExpireLeases();
  }
  EXPECT_TRUE(Report(w, l, 0.5).ok());
}

TEST_F(JobManagerTest, RepeatedFailuresFailTheTrialWithItsError) {
  v1::JobSpec spec = TinySpec(1);
  spec.mutable_budget()->set_max_attempts(2);
  v1::Job job = Submit(spec);
  std::string w = Register("w");
  auto l1 = Lease(w);
  ASSERT_TRUE(Report(w, l1, 0, /*failed=*/true).ok());
  auto l2 = Lease(w);
  ASSERT_TRUE(l2.has_trial());
  EXPECT_EQ(l2.lease().trial_id(), l1.lease().trial_id());
  ASSERT_TRUE(Report(w, l2, 0, /*failed=*/true).ok());
  auto t = jm_->GetCandidate(job.id(), 0).value();
  EXPECT_EQ(t.state(), v1::TRIAL_FAILED);
  EXPECT_EQ(t.error(), "boom");
  auto j = jm_->GetJob(job.id()).value();
  EXPECT_EQ(j.state(), v1::JOB_FAILED);
  EXPECT_THAT(j.error(), HasSubstr("all 1 trials failed"));
}

TEST_F(JobManagerTest, HandedBackTrialDoesNotUseAnAttempt) {
  v1::JobSpec spec = TinySpec(1);
  spec.mutable_budget()->set_max_attempts(1);
  v1::Job job = Submit(spec);
  std::string w = Register("w");
  auto l = Lease(w);
  v1::ReportResultRequest r;
  r.set_worker_id(w);
  *r.mutable_lease() = l.lease();
  r.set_handed_back(true);
  ASSERT_TRUE(jm_->ReportResult(r).ok());
  auto again = Lease(w);
  ASSERT_TRUE(again.has_trial());
  ASSERT_TRUE(Report(w, again, 0.6).ok());
  EXPECT_EQ(jm_->GetJob(job.id())->state(), v1::JOB_SUCCEEDED);
}

TEST_F(JobManagerTest, LeaseDeadlinesIgnoreWallClockSteps) {
  Submit(TinySpec(1));
  std::string w = Register("w");
  auto l = Lease(w);
  ASSERT_TRUE(l.has_trial());
  clock_.StepWall(absl::Hours(2));  // NTP step forward: not time passing
  jm_->ExpireLeases();
  EXPECT_TRUE(Report(w, l, 0.5).ok()) << "a wall-clock step expired the lease";
  Submit(TinySpec(1));
  auto l2 = Lease(w);
  ASSERT_TRUE(l2.has_trial());
  clock_.StepWall(-absl::Hours(5));  // a step back does not extend it either
  clock_.Advance(absl::Seconds(31));
  jm_->ExpireLeases();
  EXPECT_EQ(Report(w, l2, 0.5).code(), absl::StatusCode::kFailedPrecondition);
}

TEST_F(JobManagerTest, ARetriedReportCountsOnceAndALateOneNever) {
  v1::Job job = Submit(TinySpec(2));
  std::string a = Register("a"), b = Register("b");
  auto l = Lease(a);
  ASSERT_TRUE(Report(a, l, 0.6).ok());
  ASSERT_TRUE(Report(a, l, 0.6).ok()) << "a retry after a lost answer is answered OK again";
  EXPECT_EQ(jm_->GetJob(job.id())->counts().succeeded(), 1);
  // Someone else's report on that lease is refused.
  EXPECT_EQ(Report(b, l, 0.9).code(), absl::StatusCode::kFailedPrecondition);
  // The same after a restart (the applied epoch is stored with the trial).
  ASSERT_TRUE(writer_->Flush().ok());
  Open();
  EXPECT_TRUE(Report(a, l, 0.6).ok());
  EXPECT_EQ(jm_->GetJob(job.id())->counts().succeeded(), 1);
  // A late report of an expired lease is refused and counted nowhere.
  auto l2 = Lease(a);
  clock_.Advance(absl::Seconds(31));
  jm_->ExpireLeases();
  auto l3 = Lease(b);
  ASSERT_EQ(l3.lease().trial_id(), l2.lease().trial_id());
  EXPECT_EQ(Report(a, l2, 0.99).code(), absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(Report(b, l3, 0.7).ok());
  auto t = jm_->GetCandidate(job.id(), l3.lease().trial_id()).value();
  EXPECT_DOUBLE_EQ(t.metrics().at("accuracy"), 0.7);
  EXPECT_EQ(jm_->GetJob(job.id())->counts().succeeded(), 2);
}

TEST_F(JobManagerTest, ALeaseIsBoundToItsWorker) {
  Submit(TinySpec(1));
  std::string a = Register("a"), b = Register("b");
  auto l = Lease(a);
  v1::HeartbeatRequest hb;
  hb.set_worker_id(b);
  *hb.mutable_lease() = l.lease();
  EXPECT_EQ(jm_->Heartbeat(hb).status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(jm_->Heartbeat(hb).status().message(), HasSubstr("another worker"));
}

TEST_F(JobManagerTest, ProgressIsIdempotentFiniteAndBounded) {
  v1::JobSpec spec = TinySpec(1);
  spec.mutable_budget()->set_epochs(3);
  v1::Job job = Submit(spec);
  std::string w = Register("w");
  auto l = Lease(w);
  v1::ReportProgressRequest p;
  p.set_worker_id(w);
  *p.mutable_lease() = l.lease();
  p.mutable_point()->set_epoch(1);
  p.mutable_point()->set_value(0.5);
  ASSERT_TRUE(jm_->ReportProgress(p).ok());
  ASSERT_TRUE(jm_->ReportProgress(p).ok()) << "a retried epoch is answered again";
  EXPECT_EQ(jm_->GetCandidate(job.id(), 0)->curve_size(), 1);
  p.mutable_point()->set_epoch(2);
  p.mutable_point()->set_value(std::nan(""));
  EXPECT_THAT(jm_->ReportProgress(p).status().message(), HasSubstr("point.value"));
  p.mutable_point()->set_value(0.6);
  p.mutable_point()->set_epoch(4);
  EXPECT_THAT(jm_->ReportProgress(p).status().message(), HasSubstr("past the job's budget"));
}

TEST_F(JobManagerTest, ForgedOrInvalidResultsAreRefusedAndCostsStayTheControllers) {
  v1::Job job = Submit(TinySpec(2));
  std::string w = Register("w");
  auto l = Lease(w);
  const double macs = jm_->GetCandidate(job.id(), 0)->metrics().at("macs");
  auto report = [&](std::map<std::string, double> m) {
    v1::ReportResultRequest r;
    r.set_worker_id(w);
    *r.mutable_lease() = l.lease();
    for (const auto& [k, v] : m) (*r.mutable_metrics())[k] = v;
    return jm_->ReportResult(r);
  };
  for (auto bad : std::vector<std::map<std::string, double>>{
           {{"accuracy", 1e308}},
           {{"accuracy", std::nan("")}},
           {{"accuracy", -0.1}},
           {{"accuracy", 0.5}, {"latency_ms", 0}},
           {{"accuracy", 0.5}, {"train_seconds", -1}},
           {{"accuracy", 0.5}, {"bad name!", 1}},
       }) {
    absl::Status st = report(bad);
    EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument) << bad.begin()->first;
    EXPECT_THAT(st.message(), HasSubstr("metrics")) << st;
  }
  EXPECT_EQ(jm_->GetCandidate(job.id(), 0)->state(), v1::TRIAL_RUNNING) << "nothing recorded";
  // A valid report with forged cost figures: recorded, the costs stay the controller's.
  ASSERT_TRUE(report({{"accuracy", 0.9}, {"macs", -5}, {"params", 0}}).ok());
  auto t = jm_->GetCandidate(job.id(), 0).value();
  EXPECT_EQ(t.state(), v1::TRIAL_SUCCEEDED);
  EXPECT_EQ(t.metrics().at("macs"), macs);
  EXPECT_GT(t.metrics().at("params"), 0);
  EXPECT_EQ(t.metrics().at("accuracy"), 0.9);
}

TEST_F(JobManagerTest, ProgressValuesOutsideTheAccuracyScaleAreRefused) {
  v1::JobSpec spec = TinySpec(2);
  spec.set_accuracy_scale(v1::PERCENT);
  Submit(spec);
  std::string w = Register("w");
  auto l = Lease(w);
  v1::ReportProgressRequest p;
  p.set_worker_id(w);
  *p.mutable_lease() = l.lease();
  p.mutable_point()->set_epoch(1);
  p.mutable_point()->set_value(100.5);
  EXPECT_THAT(jm_->ReportProgress(p).status().message(), HasSubstr("point.value"));
  p.mutable_point()->set_value(93.5);
  p.mutable_point()->set_loss(-1);
  EXPECT_THAT(jm_->ReportProgress(p).status().message(), HasSubstr("point.loss"));
  p.mutable_point()->set_loss(0.3);
  EXPECT_TRUE(jm_->ReportProgress(p).ok()) << "93.5 is a percent";
}

TEST_F(JobManagerTest, LeasesGoOnlyToWorkersWithRoomForTheTrial) {
  // Each trial carries its estimated training memory; a worker that declared less memory gets
  // none of it, a bigger one does, and a job can bound the estimate outright.
  v1::Job job = Submit(TinySpec(2, 2));
  auto reg = [&](const std::string& id, int64_t memory) { Register(id, memory); };
  reg("small", 1 << 20);  // 1 MiB: below any candidate's estimate at batch 128
  reg("big", int64_t{64} << 30);
  auto small = Lease("small");
  EXPECT_FALSE(small.has_trial()) << "no candidate fits in 1 MiB";
  auto big = Lease("big");
  ASSERT_TRUE(big.has_trial());
  auto t = jm_->GetCandidate(job.id(), big.lease().trial_id()).value();
  const double memory = t.metrics().at("train_memory_bytes");
  EXPECT_GT(memory, 16 * t.metrics().at("params")) << "weights, gradients, moments, activations";
  EXPECT_GT(memory, 1 << 20);
  // The candidate the small worker's call created waits for a worker with room: the big one.
  auto again = Lease("big");
  ASSERT_TRUE(again.has_trial());
  EXPECT_FALSE(Lease("small").has_trial());
  // A bound on the estimate rejects candidates before training, like macs and params.
  v1::JobSpec bounded = TinySpec(2, 2);
  auto* c = bounded.add_constraints();
  c->set_metric("train_memory_bytes");
  c->set_upper(1 << 20);
  v1::Job b = Submit(bounded);
  EXPECT_FALSE(Lease("big").has_trial());
  auto done = jm_->GetJob(b.id()).value();
  EXPECT_EQ(done.counts().rejected_by_cost(), 8) << "all 8 candidates are over 1 MiB";
  EXPECT_NE(done.state(), v1::JOB_RUNNING);
}

TEST_F(JobManagerTest, AWorkerThatRestartsHoldingALeaseLosesItAtOnce) {
  v1::JobSpec spec = TinySpec(2, 1);
  spec.mutable_budget()->set_max_attempts(2);
  spec.set_lease_seconds(3600);  // only the restart can end these leases in this test
  v1::Job job = Submit(spec);
  auto reg = [&](bool new_process) {
    v1::RegisterWorkerRequest r;
    r.set_worker_id("w");
    r.mutable_hardware()->set_name("cpu-1t");
    r.set_new_process(new_process);
    ASSERT_TRUE(jm_->RegisterWorker(r).ok());
  };
  reg(true);
  auto l1 = Lease("w");
  ASSERT_TRUE(l1.has_trial());
  reg(false);  // the same process registering again (the controller forgot it) keeps its lease
  EXPECT_EQ(jm_->GetCandidate(job.id(), l1.lease().trial_id())->state(), v1::TRIAL_RUNNING);
  reg(true);  // a new process under the same id: the old one died holding the lease
  auto t = jm_->GetCandidate(job.id(), l1.lease().trial_id()).value();
  EXPECT_EQ(t.state(), v1::TRIAL_QUEUED);
  EXPECT_FALSE(Report("w", l1, 0.5).ok()) << "the dead process's lease is fenced";
  auto l2 = Lease("w");
  ASSERT_TRUE(l2.has_trial());
  EXPECT_EQ(l2.lease().trial_id(), l1.lease().trial_id()) << "the re-queued trial goes first";
  reg(true);  // it kills its worker again: max_attempts used, failed; the job goes on
  t = jm_->GetCandidate(job.id(), l1.lease().trial_id()).value();
  EXPECT_EQ(t.state(), v1::TRIAL_FAILED);
  EXPECT_THAT(t.error(), HasSubstr("restarted while training it"));
  EXPECT_THAT(t.error(), HasSubstr("after 2 attempts"));
  auto l3 = Lease("w");
  ASSERT_TRUE(l3.has_trial());
  EXPECT_NE(l3.lease().trial_id(), l1.lease().trial_id());
  ASSERT_TRUE(Report("w", l3, 0.7).ok());
  EXPECT_EQ(jm_->GetJob(job.id())->state(), v1::JOB_SUCCEEDED);
}

TEST_F(JobManagerTest, ATrialNoLiveWorkerHasRoomForFailsWithTheSizesNamed) {
  v1::JobSpec spec = TinySpec(2, 2);
  v1::Job job = Submit(spec);
  auto reg = [&](const std::string& id, int64_t memory) { Register(id, memory); };
  reg("small", 1 << 20);
  // Polling small workers cannot fill the queue: at most max_parallel_trials wait there.
  for (int i = 0; i < 5; ++i) EXPECT_FALSE(Lease("small").has_trial());
  EXPECT_EQ(jm_->GetJob(job.id())->counts().queued(), 2);
  jm_->ExpireLeases();  // first seen unfit now
  clock_.Advance(absl::Seconds(59));
  EXPECT_FALSE(Lease("small").has_trial());  // still live
  jm_->ExpireLeases();
  EXPECT_EQ(jm_->GetJob(job.id())->counts().failed(), 0) << "not before unplaceable_after";
  clock_.Advance(absl::Seconds(2));
  jm_->ExpireLeases();
  auto j = jm_->GetJob(job.id()).value();
  EXPECT_EQ(j.counts().failed(), 2);
  EXPECT_EQ(j.state(), v1::JOB_FAILED) << "both trials failed, max_trials reached";
  auto t = jm_->GetCandidate(job.id(), 0).value();
  EXPECT_THAT(t.error(), HasSubstr("the largest live worker declares 1.0 MiB"));
  EXPECT_THAT(t.error(), HasSubstr("train_memory_bytes"));

  // A worker that declares no memory takes anything: nothing is unplaceable while it lives.
  v1::Job other = Submit(TinySpec(2, 2));
  EXPECT_FALSE(Lease("small").has_trial());
  reg("any", 0);
  jm_->ExpireLeases();
  clock_.Advance(absl::Seconds(61));
  EXPECT_FALSE(Lease("small").has_trial());
  Lease("any");  // takes one of them (and keeps itself live)
  jm_->ExpireLeases();
  EXPECT_EQ(jm_->GetJob(other.id())->counts().failed(), 0);
}

TEST_F(JobManagerTest, ACancelledJobsWorkerHearsCancelOnItsHeartbeat) {
  v1::Job job = Submit(TinySpec(2));
  std::string w = Register("w");
  auto l = Lease(w);
  ASSERT_TRUE(jm_->CancelJob(job.id()).ok());
  v1::HeartbeatRequest hb;
  hb.set_worker_id(w);
  *hb.mutable_lease() = l.lease();
  auto r = jm_->Heartbeat(hb);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->cancel());
}

}  // namespace
}  // namespace nasforge
