// JobManager logic on a real SQLite store with a fake clock: leases, fencing, retries, dedupe,
// cost pre-checks, cancellation, recovery, Pareto queries and watch events.
#include "controller/job_manager.h"

#include <unistd.h>

#include <atomic>
#include <cmath>
#include <filesystem>
#include <thread>

#include "absl/synchronization/notification.h"
#include "core/cost.h"
#include "core/early_stopping.h"
#include "core/search_space.h"
#include "core/strategies/registry.h"
#include "core/test_hooks.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace nasforge {
namespace {

using ::testing::HasSubstr;

v1::JobSpec TinySpec(int max_trials, int parallel = 2) {
  v1::JobSpec s;
  s.set_name("tiny");
  auto* m = s.mutable_search_space()->mutable_mbconv();
  m->set_resolution(28);
  m->set_in_channels(1);
  m->set_num_classes(10);
  m->add_stem_channels(8);
  m->add_stem_channels(16);
  auto* st = m->add_stages();
  st->set_stride(2);
  for (int k : {3, 5}) st->add_kernel(k);
  for (int e : {1, 3}) st->add_expansion(e);
  st->add_repeats(1);
  st->add_channels(16);
  st->add_se_ratio(0);
  s.mutable_budget()->set_max_trials(max_trials);
  s.mutable_budget()->set_max_parallel_trials(parallel);
  s.mutable_budget()->set_seed(3);
  s.set_lease_seconds(30);
  return s;  // 2 * 2 * 2 = 8 architectures
}

class JobManagerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = absl::StrCat(std::filesystem::temp_directory_path().string(), "/jm-", getpid(), "-",
                         ::testing::UnitTest::GetInstance()->current_test_info()->name(), ".db");
    std::filesystem::remove(path_);
    Open();
  }
  void TearDown() override {
    jm_.reset();
    writer_.reset();
    store_.reset();
    std::filesystem::remove(path_);
  }
  void Open() {
    jm_.reset();
    writer_.reset();
    store_.reset();
    store_ = std::move(OpenStore("sqlite://" + path_).value());
    writer_ = std::make_unique<StoreWriter>(store_.get(), nullptr);
    jm_ = std::make_unique<JobManager>(store_.get(), writer_.get(), &clock_, nullptr);
    ASSERT_TRUE(jm_->Recover().ok());
  }
  // `memory`: the worker's declared memory in bytes (0: undeclared, takes anything).
  std::string Register(const std::string& id, int64_t memory = 0) {
    v1::RegisterWorkerRequest r;
    r.set_worker_id(id);
    r.mutable_hardware()->set_name("cpu-1t");
    r.mutable_hardware()->set_memory_bytes(memory);
    return jm_->RegisterWorker(r).value().worker_id();
  }
  v1::LeaseTrialResponse Lease(const std::string& worker) {
    v1::LeaseTrialRequest r;
    r.set_worker_id(worker);
    return jm_->LeaseTrial(r).value();
  }
  absl::Status Report(const std::string& worker, const v1::LeaseTrialResponse& l, double acc,
                      bool failed = false) {
    v1::ReportResultRequest r;
    r.set_worker_id(worker);
    *r.mutable_lease() = l.lease();
    r.set_failed(failed);
    if (failed) r.set_error("boom");
    (*r.mutable_metrics())["accuracy"] = acc;
    r.set_hardware_profile("cpu-1t");
    return jm_->ReportResult(r);
  }
  v1::Job Submit(const v1::JobSpec& spec, const std::string& key = "") {
    v1::SubmitJobRequest r;
    *r.mutable_spec() = spec;
    r.set_idempotency_key(key);
    return jm_->SubmitJob(r).value();
  }

  FakeClock clock_;
  std::string path_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<StoreWriter> writer_;
  std::unique_ptr<JobManager> jm_;
};

TEST_F(JobManagerTest, RunsAJobToCompletion) {
  v1::Job job = Submit(TinySpec(3));
  EXPECT_EQ(job.state(), v1::JOB_RUNNING);
  std::string w = Register("w1");
  for (int i = 0; i < 3; ++i) {
    auto l = Lease(w);
    ASSERT_TRUE(l.has_trial());
    EXPECT_EQ(l.lease().trial_id(), i);
    EXPECT_EQ(l.lease().epoch(), 1u);
    v1::ReportProgressRequest p;
    p.set_worker_id(w);
    *p.mutable_lease() = l.lease();
    p.mutable_point()->set_epoch(1);
    p.mutable_point()->set_value(0.5);
    EXPECT_EQ(jm_->ReportProgress(p).value().decision(), v1::CONTINUE);
    ASSERT_TRUE(Report(w, l, 0.8 + i / 100.0).ok());
  }
  EXPECT_FALSE(Lease(w).has_trial());
  auto done = jm_->GetJob(job.id()).value();
  EXPECT_EQ(done.state(), v1::JOB_SUCCEEDED);
  EXPECT_EQ(done.counts().succeeded(), 3);
  EXPECT_DOUBLE_EQ(done.best_objective(), 0.82);
  // The controller filled in the analytic cost before training.
  auto t = jm_->GetCandidate(job.id(), 0).value();
  EXPECT_EQ(t.metrics().at("macs"), static_cast<double>(ComputeCost(t.architecture()).macs));
  EXPECT_EQ(t.curve_size(), 1);
}

TEST_F(JobManagerTest, RespectsMaxParallelTrials) {
  Submit(TinySpec(5, /*parallel=*/2));
  std::string w = Register("w");
  EXPECT_TRUE(Lease(w).has_trial());
  EXPECT_TRUE(Lease(w).has_trial());
  auto third = Lease(w);
  EXPECT_FALSE(third.has_trial());
  EXPECT_GT(third.retry_after_ms(), 0);
}

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

TEST_F(JobManagerTest, NeverTrainsADuplicateAndFinishesWhenTheSpaceIsExhausted) {
  v1::Job job = Submit(TinySpec(20));  // the space has only 8 architectures
  std::string w = Register("w");
  std::set<std::string> hashes;
  for (;;) {
    auto l = Lease(w);
    if (!l.has_trial()) break;
    EXPECT_TRUE(hashes.insert(l.arch_hash()).second) << "duplicate " << l.arch_hash();
    ASSERT_TRUE(Report(w, l, 0.5).ok());
  }
  EXPECT_EQ(hashes.size(), 8u);
  auto j = jm_->GetJob(job.id()).value();
  EXPECT_EQ(j.state(), v1::JOB_SUCCEEDED);
  EXPECT_THAT(j.error(), HasSubstr("search space exhausted"));
}

TEST_F(JobManagerTest, CostBoundsAreCheckedBeforeDispatch) {
  v1::JobSpec spec = TinySpec(8);
  auto* c = spec.add_constraints();
  c->set_metric("params");
  // Between the smallest and the largest architecture of the space.
  std::vector<int64_t> params;
  for (uint64_t i = 0; i < 200; ++i) {
    params.push_back(ComputeCost(SampleArchitecture(spec.search_space(), i)).params);
  }
  std::sort(params.begin(), params.end());
  double bound = params[params.size() / 2];
  c->set_upper(bound);
  v1::Job job = Submit(spec);
  std::string w = Register("w");
  int leased = 0;
  for (;;) {
    auto l = Lease(w);
    if (!l.has_trial()) break;
    ++leased;
    EXPECT_LE(ComputeCost(l.architecture()).params, bound);
    ASSERT_TRUE(Report(w, l, 0.5).ok());
  }
  auto j = jm_->GetJob(job.id()).value();
  EXPECT_GT(j.counts().rejected_by_cost(), 0);
  EXPECT_EQ(leased + j.counts().rejected_by_cost(), 8);
}

TEST_F(JobManagerTest, CancelStopsEverything) {
  v1::Job job = Submit(TinySpec(4));
  std::string w = Register("w");
  auto l = Lease(w);
  auto cancelled = jm_->CancelJob(job.id()).value();
  EXPECT_EQ(cancelled.state(), v1::JOB_CANCELLED);
  v1::HeartbeatRequest hb;
  hb.set_worker_id(w);
  *hb.mutable_lease() = l.lease();
  EXPECT_TRUE(jm_->Heartbeat(hb).value().cancel());
  v1::ReportProgressRequest p;
  p.set_worker_id(w);
  *p.mutable_lease() = l.lease();
  p.mutable_point()->set_epoch(1);
  EXPECT_EQ(jm_->ReportProgress(p).value().decision(), v1::STOP);
  EXPECT_FALSE(Lease(w).has_trial());
  EXPECT_EQ(jm_->CancelJob(job.id())->state(), v1::JOB_CANCELLED);  // idempotent
}

TEST_F(JobManagerTest, IdempotencyKeyReturnsTheFirstJob) {
  v1::Job a = Submit(TinySpec(2), "k1");
  v1::Job b = Submit(TinySpec(2), "k1");
  v1::Job c = Submit(TinySpec(2), "k2");
  EXPECT_EQ(a.id(), b.id());
  EXPECT_NE(a.id(), c.id());
  EXPECT_EQ(jm_->ListJobs({}).value().jobs_size(), 2);
}

TEST_F(JobManagerTest, ValidationErrorsNameTheField) {
  v1::SubmitJobRequest r;
  *r.mutable_spec() = TinySpec(0);
  auto st = jm_->SubmitJob(r).status();
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(st.message(), HasSubstr("spec.budget.max_trials"));
  r.clear_spec();
  r.set_spec_yaml("budget: {max_trials: -1}\nbogus: 1\n");
  st = jm_->SubmitJob(r).status();
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(st.message(), HasSubstr("bogus"));
  v1::LeaseTrialRequest lr;
  lr.set_worker_id("ghost");
  EXPECT_EQ(jm_->LeaseTrial(lr).status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST_F(JobManagerTest, RecoversJobsAndLeasesAfterRestart) {
  v1::Job job = Submit(TinySpec(3));
  std::string w = Register("w");
  auto l0 = Lease(w);
  ASSERT_TRUE(Report(w, l0, 0.9).ok());
  auto l1 = Lease(w);  // running when the controller "crashes"
  ASSERT_TRUE(writer_->Flush().ok());
  clock_.Advance(absl::Seconds(45));  // down for longer than the 30 s lease
  Open();                             // a new manager on the same database
  jm_->ExpireLeases();                // the live worker's lease got a fresh deadline on recovery
  auto j = jm_->GetJob(job.id()).value();
  EXPECT_EQ(j.counts().succeeded(), 1);
  EXPECT_EQ(j.counts().running(), 1);
  // The worker that held the lease carries on and its report still counts.
  ASSERT_TRUE(Report(w, l1, 0.8).ok());
  auto l2 = Lease(w);
  ASSERT_TRUE(l2.has_trial());
  EXPECT_EQ(l2.lease().trial_id(), 2);
  // The sampler resumed where it stood: no architecture repeats across the restart.
  EXPECT_NE(l2.arch_hash(), l0.arch_hash());
  EXPECT_NE(l2.arch_hash(), l1.arch_hash());
  ASSERT_TRUE(Report(w, l2, 0.7).ok());
  EXPECT_EQ(jm_->GetJob(job.id())->state(), v1::JOB_SUCCEEDED);
}

TEST_F(JobManagerTest, SameSeedSameProposals) {
  v1::Job a = Submit(TinySpec(4, 4));
  v1::Job b = Submit(TinySpec(4, 4));
  std::string w = Register("w");
  std::vector<std::string> ha, hb;
  for (int i = 0; i < 8; ++i) {
    auto l = Lease(w);
    (l.lease().job_id() == a.id() ? ha : hb).push_back(l.arch_hash());
  }
  EXPECT_EQ(ha, hb);
  EXPECT_EQ(ha.size(), 4u);
}

TEST_F(JobManagerTest, ParetoQueryReturnsOnlyNonDominatedCandidates) {
  v1::Job job = Submit(TinySpec(6, 6));
  std::string w = Register("w");
  std::vector<v1::LeaseTrialResponse> leases;
  for (int i = 0; i < 6; ++i) leases.push_back(Lease(w));
  for (int i = 0; i < 6; ++i) ASSERT_TRUE(Report(w, leases[i], 0.5 + 0.07 * ((i * 5) % 6)).ok());
  v1::QueryParetoRequest q;
  q.set_job_id(job.id());
  auto front = jm_->QueryPareto(q).value();
  ASSERT_GT(front.trials_size(), 0);
  auto all = jm_->ListCandidates([&] {
                  v1::ListCandidatesRequest r;
                  r.set_job_id(job.id());
                  return r;
                }())
                 .value();
  for (const auto& f : front.trials()) {
    for (const auto& t : all.trials()) {
      bool dominates = t.metrics().at("accuracy") >= f.metrics().at("accuracy") &&
                       t.metrics().at("macs") <= f.metrics().at("macs") &&
                       (t.metrics().at("accuracy") > f.metrics().at("accuracy") ||
                        t.metrics().at("macs") < f.metrics().at("macs"));
      EXPECT_FALSE(dominates) << "trial " << t.id() << " dominates front member " << f.id();
    }
  }
  // Sorted by the first objective, best first.
  for (int i = 1; i < front.trials_size(); ++i) {
    EXPECT_GE(front.trials(i - 1).metrics().at("accuracy"),
              front.trials(i).metrics().at("accuracy"));
  }
  q.set_hardware_profile("gpu-a100");
  EXPECT_EQ(jm_->QueryPareto(q)->trials_size(), 0);
  q.set_hardware_profile("");
  q.set_limit(1);
  EXPECT_EQ(jm_->QueryPareto(q)->trials_size(), 1);
  q.add_objectives()->set_metric("nonsense");
  EXPECT_THAT(jm_->QueryPareto(q).status().message(), HasSubstr("objectives[0].metric"));
}

TEST_F(JobManagerTest, MedianRuleStopsAWeakTrialAndParetoSkipsItByDefault) {
  v1::JobSpec spec = TinySpec(5, 5);
  spec.mutable_budget()->set_epochs(4);
  spec.mutable_early_stopping()->set_rule("median");
  spec.mutable_early_stopping()->set_keep_cost_front(false);
  spec.clear_objectives();
  auto* o = spec.add_objectives();
  o->set_metric("accuracy");
  o->set_direction(v1::MAXIMIZE);
  v1::Job job = Submit(spec);
  std::string w = Register("w");
  std::vector<v1::LeaseTrialResponse> l;
  for (int i = 0; i < 4; ++i) l.push_back(Lease(w));
  auto progress = [&](const v1::LeaseTrialResponse& lease, int epoch, double v) {
    v1::ReportProgressRequest p;
    p.set_worker_id(w);
    *p.mutable_lease() = lease.lease();
    p.mutable_point()->set_epoch(epoch);
    p.mutable_point()->set_value(v);
    return jm_->ReportProgress(p).value();
  };
  for (int i = 0; i < 3; ++i) {
    for (int e = 1; e <= 4; ++e) {
      EXPECT_EQ(progress(l[i], e, 0.8 + 0.01 * e).decision(), v1::CONTINUE);
    }
    ASSERT_TRUE(Report(w, l[i], 0.84).ok());
  }
  auto r = progress(l[3], 1, 0.3);
  EXPECT_EQ(r.decision(), v1::STOP);
  EXPECT_THAT(r.reason(), HasSubstr("median rule"));
  v1::ReportResultRequest res;
  res.set_worker_id(w);
  *res.mutable_lease() = l[3].lease();
  res.set_stopped_early(true);
  (*res.mutable_metrics())["accuracy"] = 0.3;
  ASSERT_TRUE(jm_->ReportResult(res).ok());
  auto t = jm_->GetCandidate(job.id(), l[3].lease().trial_id()).value();
  EXPECT_EQ(t.state(), v1::TRIAL_STOPPED);
  EXPECT_EQ(t.curve_size(), 1);  // the partial curve is kept
  v1::QueryParetoRequest q;
  q.set_job_id(job.id());
  q.add_objectives()->set_metric("accuracy");
  q.mutable_objectives(0)->set_direction(v1::MINIMIZE);  // would pick the stopped one first
  EXPECT_EQ(jm_->QueryPareto(q)->considered(), 3);
  q.set_include_stopped(true);
  EXPECT_EQ(jm_->QueryPareto(q)->considered(), 4);
}

TEST_F(JobManagerTest, CheapCandidateOnTheFrontIsNotStoppedForLowAccuracy) {
  v1::JobSpec spec = TinySpec(5, 5);
  spec.mutable_budget()->set_epochs(4);
  spec.mutable_early_stopping()->set_rule("median");  // keep_cost_front defaults to on
  v1::Job job = Submit(spec);
  std::string w = Register("w");
  std::vector<v1::LeaseTrialResponse> l;
  for (int i = 0; i < 5; ++i) l.push_back(Lease(w));
  // Finish the three most expensive candidates with high accuracy; the cheapest one then reports
  // a low first epoch: nothing finished is as cheap, so it stays.
  std::sort(l.begin(), l.end(), [](const auto& a, const auto& b) {
    return ComputeCost(a.architecture()).macs > ComputeCost(b.architecture()).macs;
  });
  ASSERT_LT(ComputeCost(l[4].architecture()).macs, ComputeCost(l[2].architecture()).macs);
  for (int i = 0; i < 3; ++i) {
    v1::ReportProgressRequest p;
    p.set_worker_id(w);
    *p.mutable_lease() = l[i].lease();
    p.mutable_point()->set_epoch(1);
    p.mutable_point()->set_value(0.9);
    ASSERT_TRUE(jm_->ReportProgress(p).ok());
    ASSERT_TRUE(Report(w, l[i], 0.9).ok());
  }
  v1::ReportProgressRequest p;
  p.set_worker_id(w);
  *p.mutable_lease() = l[4].lease();
  p.mutable_point()->set_epoch(1);
  p.mutable_point()->set_value(0.2);
  auto r = jm_->ReportProgress(p).value();
  EXPECT_EQ(r.decision(), v1::CONTINUE);
  EXPECT_THAT(r.reason(), HasSubstr("kept: on the cost front"));
}

TEST_F(JobManagerTest, WatchersSeeEveryEventUntilTheJobEnds) {
  v1::Job job = Submit(TinySpec(2));
  std::vector<std::string> kinds;
  auto h = jm_->Subscribe(job.id(), [&](const v1::JobEvent& e) { kinds.push_back(e.kind()); });
  ASSERT_TRUE(h.ok());
  std::string w = Register("w");
  for (int i = 0; i < 2; ++i) ASSERT_TRUE(Report(w, Lease(w), 0.5).ok());
  jm_->Unsubscribe(*h);
  EXPECT_EQ(kinds, (std::vector<std::string>{"snapshot", "trial_leased", "trial_finished",
                                             "trial_leased", "trial_finished", "job_finished"}));
  EXPECT_EQ(jm_->Subscribe("nope", [](const v1::JobEvent&) {}).status().code(),
            absl::StatusCode::kNotFound);
}

// --- exactly-once semantics (issue: state only moves forward) ---

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

TEST_F(JobManagerTest, JobsShareWorkersFairly) {
  v1::JobSpec big = TinySpec(8, /*parallel=*/100);
  v1::Job a = Submit(big);
  v1::Job b = Submit(TinySpec(8, /*parallel=*/100));
  std::string w = Register("w");
  std::map<std::string, int> per_job;
  for (int i = 0; i < 6; ++i) ++per_job[Lease(w).lease().job_id()];
  EXPECT_EQ(per_job[a.id()], 3);
  EXPECT_EQ(per_job[b.id()], 3);
}

TEST_F(JobManagerTest, RecoveryReplaysInFinishOrderWhateverTheWallClockDid) {
  v1::Job job = Submit(TinySpec(3, 3));
  std::string w = Register("w");
  auto l0 = Lease(w), l1 = Lease(w), l2 = Lease(w);
  ASSERT_TRUE(Report(w, l2, 0.5).ok());
  clock_.StepWall(-absl::Hours(1));  // the clock is stepped back between two results
  ASSERT_TRUE(Report(w, l0, 0.6).ok());
  ASSERT_TRUE(Report(w, l1, 0.7).ok());
  ASSERT_TRUE(writer_->Flush().ok());
  Open();
  EXPECT_EQ(jm_->GetCandidate(job.id(), 2)->finish_seq(), 1u);
  EXPECT_EQ(jm_->GetCandidate(job.id(), 0)->finish_seq(), 2u);
  EXPECT_EQ(jm_->GetCandidate(job.id(), 1)->finish_seq(), 3u);
  EXPECT_EQ(jm_->GetJob(job.id())->finish_seq(), 3u);
}

// A store that fails every write while `down` is set (the real SQLite store underneath).
class FlakyStore final : public Store {
 public:
  explicit FlakyStore(Store* real) : real_(real) {}
  std::atomic<bool> down{false};
  absl::Status Write(const WriteBatch& b) override {
    if (down) return absl::UnavailableError("sqlite: database or disk is full");
    return real_->Write(b);
  }
  absl::StatusOr<std::vector<v1::Job>> LoadJobs() override { return real_->LoadJobs(); }
  absl::StatusOr<std::vector<v1::Trial>> LoadTrials(absl::string_view id) override {
    return real_->LoadTrials(id);
  }
  absl::StatusOr<std::vector<v1::Worker>> LoadWorkers() override { return real_->LoadWorkers(); }
  absl::Status Ping() override { return down ? absl::UnavailableError("down") : real_->Ping(); }
  absl::StatusOr<int> SchemaVersion() override { return real_->SchemaVersion(); }
  std::string Backend() const override { return "flaky"; }

 private:
  Store* real_;
};

TEST_F(JobManagerTest, WhileTheStoreFailsChangesAreRefusedAndLeasesKept) {
  jm_.reset();
  writer_.reset();
  FlakyStore flaky(store_.get());
  writer_ = std::make_unique<StoreWriter>(&flaky, nullptr);
  jm_ = std::make_unique<JobManager>(&flaky, writer_.get(), &clock_, nullptr);
  ASSERT_TRUE(jm_->Recover().ok());
  v1::Job job = Submit(TinySpec(4));
  std::string w = Register("w");
  auto held = Lease(w);
  ASSERT_TRUE(writer_->Flush().ok());
  flaky.down = true;
  // The first change after the outage fails to commit; the grant is abandoned (as the RPC layer
  // does when the commit fails), so nothing stays RUNNING for a worker that never got it.
  v1::LeaseTrialRequest lr;
  lr.set_worker_id(w);
  auto doomed = jm_->LeaseTrial(lr);
  ASSERT_TRUE(doomed.ok());
  EXPECT_FALSE(writer_->Flush(absl::Now() + absl::Seconds(2)).ok());
  jm_->AbandonLease(doomed->lease(), w);
  EXPECT_FALSE(writer_->Healthy());
  auto refused = jm_->LeaseTrial(lr);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kUnavailable);
  v1::SubmitJobRequest sr;
  *sr.mutable_spec() = TinySpec(1);
  sr.set_idempotency_key("k");
  EXPECT_EQ(jm_->SubmitJob(sr).status().code(), absl::StatusCode::kUnavailable);
  // Heartbeats still extend the held lease: the worker keeps it through the outage.
  for (int i = 0; i < 3; ++i) {
    clock_.Advance(absl::Seconds(20));
    v1::HeartbeatRequest hb;
    hb.set_worker_id(w);
    *hb.mutable_lease() = held.lease();
    ASSERT_TRUE(jm_->Heartbeat(hb).ok());
    jm_->ExpireLeases();
  }
  auto counts = jm_->GetJob(job.id())->counts();
  EXPECT_EQ(counts.running(), 1) << "only the held lease runs";
  EXPECT_EQ(jm_->GetCandidate(job.id(), doomed->lease().trial_id())->attempts(), 0);
  flaky.down = false;
  ASSERT_TRUE(writer_->Flush(absl::Now() + absl::Seconds(10)).ok());
  EXPECT_TRUE(writer_->Healthy());
  EXPECT_TRUE(Report(w, held, 0.5).ok());
  auto again = jm_->LeaseTrial(lr);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->lease().trial_id(), doomed->lease().trial_id());
  EXPECT_EQ(again->lease().epoch(), doomed->lease().epoch() + 1) << "an epoch is never reused";
  ASSERT_TRUE(writer_->Flush().ok());
  jm_.reset();
  writer_.reset();
}

TEST_F(JobManagerTest, ADecisionHeldBeforeItsCommitCannotBeOvertaken) {
  // The original race: the expiry sweeper decides (QUEUED, epoch 1) and is delayed before its
  // write while a lease is granted (RUNNING, epoch 2) and acknowledged. Hold the sweeper exactly
  // there with a pause point and let the grant run: the store must end with the grant.
  v1::Job job = Submit(TinySpec(1));
  std::string a = Register("a"), b = Register("b");
  auto first = Lease(a);
  ASSERT_TRUE(writer_->Flush().ok());
  clock_.Advance(absl::Seconds(31));
  absl::Notification at_point, release;
  test_hooks::Set("job_manager.before_enqueue", [&] {
    if (!at_point.HasBeenNotified()) {
      at_point.Notify();
      release.WaitForNotification();
    }
  });
  std::thread sweeper([&] { jm_->ExpireLeases(); });
  at_point.WaitForNotification();
  std::thread granter([&] {
    auto l = Lease(b);
    EXPECT_TRUE(l.has_trial());
    EXPECT_EQ(l.lease().epoch(), 2u);
  });
  release.Notify();
  sweeper.join();
  granter.join();
  test_hooks::ClearAll();
  ASSERT_TRUE(writer_->Flush().ok());
  auto stored = store_->LoadTrials(job.id());
  ASSERT_TRUE(stored.ok());
  EXPECT_EQ((*stored)[0].state(), v1::TRIAL_RUNNING);
  EXPECT_EQ((*stored)[0].lease_epoch(), 2u);
  // After a restart, epoch 2 is not granted again: the next grant is 3.
  Open();
  clock_.Advance(absl::Seconds(31));
  jm_->ExpireLeases();
  EXPECT_EQ(Lease(a).lease().epoch(), 3u);
}

TEST_F(JobManagerTest, HeartbeatsDoNotWaitForStrategyWork) {
  // Hold a LeaseTrial inside the manager's lock (as a long GP fit would) and heartbeat meanwhile.
  Submit(TinySpec(4, 4));
  std::string a = Register("a"), b = Register("b");
  auto held = Lease(a);
  absl::Notification in_lock, release;
  test_hooks::Set("job_manager.before_enqueue", [&] {
    if (!in_lock.HasBeenNotified()) {
      in_lock.Notify();
      release.WaitForNotification();
    }
  });
  std::thread slow([&] { Lease(b); });
  in_lock.WaitForNotification();
  absl::Notification beat;
  std::thread heartbeat([&] {
    v1::HeartbeatRequest hb;
    hb.set_worker_id(a);
    *hb.mutable_lease() = held.lease();
    EXPECT_TRUE(jm_->Heartbeat(hb).ok());
    beat.Notify();
  });
  EXPECT_TRUE(beat.WaitForNotificationWithTimeout(absl::Seconds(30)))
      << "a heartbeat waited for the manager's lock";
  release.Notify();
  slow.join();
  heartbeat.join();
  test_hooks::ClearAll();
}

TEST_F(JobManagerTest, AStrategyStepHoldsNoGlobalLock) {
  // Hold job A's strategy step (as a GP fit over thousands of points would): a new job, another
  // job's lease, a report and a query on job A itself all go through meanwhile.
  v1::Job a = Submit(TinySpec(4, 4));
  std::string w1 = Register("w1"), w2 = Register("w2"), w3 = Register("w3");
  auto first = Lease(w1);
  ASSERT_TRUE(first.has_trial());
  absl::Notification in_step, release;
  test_hooks::Set("strategy_driver.next", [&] {
    if (!in_step.HasBeenNotified()) {
      in_step.Notify();
      release.WaitForNotification();
    }
  });
  std::thread slow([&] {
    auto l = Lease(w2);
    EXPECT_TRUE(l.has_trial());
    EXPECT_EQ(l.lease().job_id(), a.id());
  });
  in_step.WaitForNotification();
  absl::Notification done;
  std::string b_id, b_leased;
  absl::Status reported;
  std::thread others([&] {
    b_id = Submit(TinySpec(2, 2)).id();
    b_leased = Lease(w3).lease().job_id();
    reported = Report(w1, first, 0.5);
    EXPECT_TRUE(jm_->GetJob(a.id()).ok());
    done.Notify();
  });
  bool went_through = done.WaitForNotificationWithTimeout(absl::Seconds(30));
  release.Notify();
  slow.join();
  others.join();
  test_hooks::ClearAll();
  ASSERT_TRUE(went_through) << "a call waited for another job's strategy step";
  EXPECT_EQ(b_leased, b_id) << "the other job's worker got a trial of its own job";
  EXPECT_TRUE(reported.ok()) << reported;
  auto job = jm_->GetJob(a.id()).value();
  EXPECT_EQ(job.counts().running(), 1);
  EXPECT_EQ(job.counts().succeeded(), 1);
}

TEST_F(JobManagerTest, ConcurrentWorkersNeverExceedTheJobsBounds) {
  // Many workers leasing at once, each lease asking the strategy outside the manager's lock:
  // never more trials than max_trials, never more running than max_parallel_trials, every
  // candidate distinct.
  constexpr int kWorkers = 8;
  v1::Job job = Submit(TinySpec(8, 3));
  std::vector<std::string> ids;
  for (int i = 0; i < kWorkers; ++i) ids.push_back(Register(absl::StrCat("w", i)));
  std::atomic<int> max_running{0};
  uint64_t h = jm_->Subscribe(job.id(),
                              [&](const v1::JobEvent& e) {
                                int r = e.job().counts().running();
                                int m = max_running.load();
                                while (r > m && !max_running.compare_exchange_weak(m, r)) {
                                }
                              })
                   .value();
  std::vector<std::thread> threads;
  for (int i = 0; i < kWorkers; ++i) {
    threads.emplace_back([&, w = ids[i]] {
      for (int k = 0; k < 200; ++k) {
        auto l = Lease(w);
        if (!l.has_trial()) {
          if (jm_->GetJob(job.id())->state() != v1::JOB_RUNNING) return;
          std::this_thread::yield();
          continue;
        }
        EXPECT_TRUE(Report(w, l, 0.1 * l.lease().trial_id()).ok());
      }
    });
  }
  for (auto& t : threads) t.join();
  jm_->Unsubscribe(h);
  auto done = jm_->GetJob(job.id()).value();
  EXPECT_EQ(done.state(), v1::JOB_SUCCEEDED);
  EXPECT_EQ(done.counts().succeeded(), 8);
  EXPECT_LE(max_running.load(), 3);
  std::set<std::string> hashes;
  for (int i = 0; i < 8; ++i) hashes.insert(jm_->GetCandidate(job.id(), i)->arch_hash());
  EXPECT_EQ(hashes.size(), 8u);
  EXPECT_FALSE(jm_->GetCandidate(job.id(), 8).ok());
}

TEST_F(JobManagerTest, ManyClientsAtOnceKeepTheCountsTrue) {
  // Every kind of call at once, as the RPC layer's threads make them (and what the tsan preset
  // runs to look for races): workers leasing, reporting progress, heartbeating, finishing and
  // failing; the expiry sweeper with a moving clock; watchers coming and going; readers; a second
  // job submitted and cancelled. Afterwards each job's counts equal its trials.
  v1::JobSpec spec = TinySpec(40, 4);
  auto* st = spec.mutable_search_space()->mutable_mbconv()->mutable_stages(0);
  st->add_kernel(7);
  st->add_expansion(6);
  st->add_channels(24);
  st->add_channels(32);  // 2 * 3 * 3 * 3 = 54 architectures
  spec.mutable_budget()->set_max_attempts(3);
  v1::Job a = Submit(spec);
  std::atomic<bool> stop{false};
  std::vector<std::thread> threads;
  for (int i = 0; i < 6; ++i) {
    std::string w = Register(absl::StrCat("w", i));
    threads.emplace_back([&, w, i] {
      for (int k = 0; !stop && k < 2000; ++k) {
        v1::LeaseTrialRequest lr;
        lr.set_worker_id(w);
        auto l = jm_->LeaseTrial(lr);
        ASSERT_TRUE(l.ok()) << l.status();
        if (!l->has_trial()) {
          std::this_thread::yield();
          continue;
        }
        v1::ReportProgressRequest p;
        p.set_worker_id(w);
        *p.mutable_lease() = l->lease();
        p.mutable_point()->set_epoch(1);
        p.mutable_point()->set_value(0.01 * (k % 90));
        (void)jm_->ReportProgress(p);  // may be stale: the sweeper runs too
        v1::HeartbeatRequest hb;
        hb.set_worker_id(w);
        *hb.mutable_lease() = l->lease();
        (void)jm_->Heartbeat(hb);
        (void)Report(w, *l, 0.01 * (k % 90), /*failed=*/(k + i) % 7 == 0);
      }
    });
  }
  threads.emplace_back([&] {
    while (!stop) {
      clock_.Advance(absl::Seconds(1));
      jm_->ExpireLeases();
      std::this_thread::yield();
    }
  });
  threads.emplace_back([&] {
    while (!stop) {
      auto h = jm_->Subscribe(a.id(), [](const v1::JobEvent&) {});
      ASSERT_TRUE(h.ok());
      v1::QueryParetoRequest q;
      q.set_job_id(a.id());
      EXPECT_TRUE(jm_->QueryPareto(q).ok());
      v1::ListCandidatesRequest c;
      c.set_job_id(a.id());
      EXPECT_TRUE(jm_->ListCandidates(c).ok());
      jm_->Unsubscribe(*h);
    }
  });
  threads.emplace_back([&] {
    for (int k = 0; k < 5; ++k) {
      v1::Job b = Submit(TinySpec(4, 2));
      std::this_thread::yield();
      EXPECT_TRUE(jm_->CancelJob(b.id()).ok());
    }
  });
  // Ends when job A has finished (or, failing that, the workers' loops run out).
  for (int k = 0; k < 600000 && jm_->GetJob(a.id())->state() == v1::JOB_RUNNING; ++k) {
    std::this_thread::yield();
  }
  stop = true;
  for (auto& t : threads) t.join();
  ASSERT_TRUE(writer_->Flush().ok());
  v1::ListJobsRequest lj;
  lj.set_page_size(100);
  v1::ListJobsResponse jobs = jm_->ListJobs(lj).value();
  ASSERT_EQ(jobs.jobs_size(), 6);
  for (const v1::Job& job : jobs.jobs()) {
    std::map<int, int> by_state;
    for (int64_t id = 0;; ++id) {
      auto t = jm_->GetCandidate(job.id(), id);
      if (!t.ok()) break;
      ++by_state[t->state()];
    }
    const auto& c = job.counts();
    EXPECT_EQ(c.queued(), by_state[v1::TRIAL_QUEUED]) << job.id();
    EXPECT_EQ(c.running(), by_state[v1::TRIAL_RUNNING]) << job.id();
    EXPECT_EQ(c.succeeded(), by_state[v1::TRIAL_SUCCEEDED]) << job.id();
    EXPECT_EQ(c.failed(), by_state[v1::TRIAL_FAILED]) << job.id();
    EXPECT_EQ(c.cancelled(), by_state[v1::TRIAL_CANCELLED]) << job.id();
    EXPECT_NE(job.state(), v1::JOB_RUNNING) << job.id();
  }
  auto done = jm_->GetJob(a.id()).value();
  EXPECT_EQ(done.state(), v1::JOB_SUCCEEDED);
  EXPECT_EQ(done.counts().succeeded() + done.counts().failed(), 40);
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

// docs/EXTENDING.md, checked: a strategy and an early-stopping rule that exist only in this test,
// registered with one line each, run a job through the manager like the built-in ones.
TEST_F(JobManagerTest, AStrategyAndARuleRegisteredFromTestCodeRunAJob) {
  v1::JobSpec spec = TinySpec(3, 3);
  spec.mutable_strategy()->set_name("test-reverse");
  spec.mutable_budget()->set_epochs(5);
  spec.mutable_early_stopping()->set_rule("test-stop-at-2");
  spec.mutable_early_stopping()->set_keep_cost_front(false);
  v1::SubmitJobRequest before;
  *before.mutable_spec() = spec;
  EXPECT_THAT(std::string(jm_->SubmitJob(before).status().message()),
              HasSubstr("early_stopping.rule: 'test-stop-at-2' is not one of asha, hyperband"));

  // A strategy proposing the space's architectures from the last gene vector backwards.
  class Reverse final : public Strategy {
   public:
    explicit Reverse(v1::SearchSpace s) : space_(std::move(s)) {}
    Proposal Ask(const Admissible& admissible, int) override {
      const auto d = SpaceDecisions(space_);
      while (next_ < SpaceSize(space_)) {
        Genes g(d.size());
        uint64_t i = SpaceSize(space_) - 1 - next_++;
        for (size_t k = 0; k < d.size(); ++k, i /= d[k - 1].choices) g[k] = i % d[k].choices;
        v1::Architecture a = DecodeArchitecture(space_, g);
        if (admissible(a)) return {Proposal::Kind::kCandidate, a, ""};
      }
      return {Proposal::Kind::kDone, {}, "every architecture proposed"};
    }
    void Tell(const v1::Trial&) override {}
    uint64_t position() const override { return next_; }
    v1::SearchSpace space_;
    uint64_t next_ = 0;
  };
  if (!Strategies().Find("test-reverse")) {
    ASSERT_TRUE(
        Strategies()
            .Add({"test-reverse",
                  "test only",
                  [](const v1::JobSpec& s, uint64_t) -> absl::StatusOr<std::unique_ptr<Strategy>> {
                    return std::make_unique<Reverse>(s.search_space());
                  },
                  {},
                  {}})
            .ok());
    ASSERT_TRUE(
        StoppingRules()
            .Add({"test-stop-at-2",
                  "test only",
                  [](const StoppingInput&, int epoch) {
                    return epoch >= 2 ? StopDecision{true, "test rule: epoch 2"} : StopDecision{};
                  },
                  {}})
            .ok());
  }
  EXPECT_EQ(Strategies().Add({"test-reverse", "again", nullptr, {}, {}}).code(),
            absl::StatusCode::kAlreadyExists);

  v1::Job job = Submit(spec);
  std::string w = Register("w");
  auto l = Lease(w);
  ASSERT_TRUE(l.has_trial());
  const auto d = SpaceDecisions(spec.search_space());
  Genes last;
  for (const auto& dec : d) last.push_back(dec.choices - 1);
  EXPECT_EQ(l.arch_hash(), ArchHash(DecodeArchitecture(spec.search_space(), last)))
      << "the registered strategy proposed it";
  v1::ReportProgressRequest p;
  p.set_worker_id(w);
  *p.mutable_lease() = l.lease();
  p.mutable_point()->set_epoch(1);
  p.mutable_point()->set_value(0.5);
  EXPECT_EQ(jm_->ReportProgress(p)->decision(), v1::CONTINUE);
  p.mutable_point()->set_epoch(2);
  auto r = jm_->ReportProgress(p);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->decision(), v1::STOP);
  EXPECT_EQ(r->reason(), "test rule: epoch 2");
}

TEST(JobEventsTest, EachWatcherHearsOnlyItsJobUntilRemoved) {
  JobEvents hub;
  std::vector<std::string> a, b;
  uint64_t ha = hub.Add("a", [&](const v1::JobEvent& e) { a.push_back(e.kind()); });
  hub.Add("b", [&](const v1::JobEvent& e) { b.push_back(e.kind()); });
  auto event = [](const std::string& job, const std::string& kind) {
    v1::JobEvent e;
    e.mutable_job()->set_id(job);
    e.set_kind(kind);
    return e;
  };
  hub.Publish({event("a", "one"), event("b", "two"), event("c", "none"), event("a", "three")});
  EXPECT_THAT(a, ::testing::ElementsAre("one", "three"));
  EXPECT_THAT(b, ::testing::ElementsAre("two"));
  hub.Remove(ha);
  hub.Remove(ha);  // twice: harmless
  hub.Publish({event("a", "four")});
  EXPECT_EQ(a.size(), 2u);
  EXPECT_EQ(hub.size(), 1u);
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
