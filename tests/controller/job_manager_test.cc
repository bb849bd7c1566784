// JobManager on a real SQLite store with a fake clock: jobs run to completion, parallelism,
// dedupe, cost pre-checks, cancellation, idempotency, validation, Pareto queries, early-stopping
// decisions, watch events, fair sharing, and extension points registered from test code.
#include <cstdint>
#include <string>

#include "core/pareto.h"
#include "tests/controller/job_manager_fixture.h"
#include "tests/test_util.h"

namespace nasforge {
namespace {

using ::testing::HasSubstr;

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

// Jobs with dataset external are trained by the user's own code (the Python SDK's workers, which
// register datasets: [external]); the built-in workers (no datasets) never lease them, and a
// worker that names its datasets leases nothing else.
TEST_F(JobManagerTest, ExternalDatasetJobsGoOnlyToWorkersThatTrainThem) {
  v1::JobSpec ext = TinySpec(2);
  ext.mutable_search_space()->mutable_mbconv()->set_in_channels(3);  // not Fashion-MNIST's shape
  ext.mutable_search_space()->mutable_mbconv()->set_num_classes(100);
  ext.mutable_training()->set_dataset("external");
  v1::Job e = Submit(ext);
  v1::Job builtin = Submit(TinySpec(2));
  std::string plain = Register("builtin");
  v1::RegisterWorkerRequest r;
  r.set_worker_id("sdk");
  r.mutable_hardware()->set_name("python");
  r.add_datasets("External");  // names are matched case-insensitively
  ASSERT_TRUE(jm_->RegisterWorker(r).ok());
  for (int i = 0; i < 2; ++i) EXPECT_EQ(Lease("sdk").lease().job_id(), e.id());
  EXPECT_FALSE(Lease("sdk").has_trial());  // the built-in job is not its to train
  for (int i = 0; i < 2; ++i) EXPECT_EQ(Lease(plain).lease().job_id(), builtin.id());
  EXPECT_FALSE(Lease(plain).has_trial());
  r.clear_datasets();
  for (int i = 0; i < 17; ++i) r.add_datasets("d");
  auto too_many = jm_->RegisterWorker(r);
  EXPECT_EQ(too_many.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(too_many.status().message()), HasSubstr("datasets"));
}

// ExtendJob: an ended job gets more trials and runs again (and stays so across a restart); a
// cancelled job resumes with its cancelled trials added back to the budget; bad requests name
// the field.
TEST_F(JobManagerTest, AnEndedJobIsExtendedAndACancelledOneResumed) {
  v1::Job job = Submit(TinySpec(2));
  std::string w = Register("w");
  auto run = [&](int n) {
    for (int i = 0; i < n; ++i) {
      auto l = Lease(w);
      ASSERT_TRUE(l.has_trial()) << i;
      ASSERT_TRUE(Report(w, l, 0.5 + l.lease().trial_id() / 100.0).ok());
    }
  };
  run(2);
  ASSERT_EQ(jm_->GetJob(job.id())->state(), v1::JOB_SUCCEEDED);
  v1::ExtendJobRequest x;
  x.set_job_id(job.id());
  EXPECT_THAT(std::string(jm_->ExtendJob(x).status().message()), HasSubstr("add_trials"));
  x.set_max_trials(2);
  EXPECT_THAT(std::string(jm_->ExtendJob(x).status().message()),
              HasSubstr("max_trials: 2 is not above the job's budget of 2"));
  x.set_max_trials(0);
  x.set_resume(true);
  EXPECT_EQ(jm_->ExtendJob(x).status().code(), absl::StatusCode::kFailedPrecondition);
  x.set_resume(false);
  x.set_add_trials(2);
  auto extended = jm_->ExtendJob(x);
  ASSERT_TRUE(extended.ok()) << extended.status();
  EXPECT_EQ(extended->state(), v1::JOB_RUNNING);
  EXPECT_EQ(extended->spec().budget().max_trials(), 4);
  EXPECT_FALSE(extended->has_end_time());
  Open();  // the extension is durable: a restarted controller goes on with it
  w = Register("w");
  run(2);
  auto done = jm_->GetJob(job.id()).value();
  EXPECT_EQ(done.state(), v1::JOB_SUCCEEDED);
  EXPECT_EQ(done.counts().succeeded(), 4);

  v1::Job c = Submit(TinySpec(3, /*parallel=*/1));
  ASSERT_TRUE(Lease(w).has_trial());
  ASSERT_TRUE(jm_->CancelJob(c.id()).ok());
  v1::ExtendJobRequest r;
  r.set_job_id(c.id());
  r.set_resume(true);
  auto resumed = jm_->ExtendJob(r);
  ASSERT_TRUE(resumed.ok()) << resumed.status();
  EXPECT_EQ(resumed->state(), v1::JOB_RUNNING);
  EXPECT_EQ(resumed->spec().budget().max_trials(), 4) << "3 + the 1 cancelled trial";
  run(3);
  auto after = jm_->GetJob(c.id()).value();
  EXPECT_EQ(after.state(), v1::JOB_SUCCEEDED);
  EXPECT_EQ(after.counts().succeeded(), 3);
  EXPECT_EQ(after.counts().cancelled(), 1);
  EXPECT_EQ(jm_->GetCandidate(c.id(), 0)->state(), v1::TRIAL_CANCELLED) << "terminal stays";
}

// ListJobs filters (state, owner, name, labels) and paging past the first page; bad labels are
// refused at submit naming the key.
TEST_F(JobManagerTest, JobsAreListedByStateOwnerNameAndLabel) {
  Principal alice{"alice", Role::kSubmit}, bob{"bob", Role::kSubmit};
  auto submit = [&](const std::string& name, const Principal& who,
                    std::map<std::string, std::string> labels) {
    v1::JobSpec s = TinySpec(1);
    s.set_name(name);
    for (const auto& [k, v] : labels) (*s.mutable_labels())[k] = v;
    v1::SubmitJobRequest r;
    *r.mutable_spec() = s;
    return jm_->SubmitJob(r, who).value();
  };
  v1::Job a = submit("Fashion-quick", alice, {{"team", "vision"}});
  v1::Job b = submit("nb201-sweep", bob, {{"team", "vision"}, {"tier", "gold"}});
  v1::Job c = submit("fashion-long", bob, {{"team", "speech"}});
  ASSERT_TRUE(jm_->CancelJob(c.id()).ok());
  Principal admin = Principal::Local();
  auto ids = [&](v1::ListJobsRequest r, const Principal& who) {
    std::vector<std::string> out;
    for (;;) {
      auto page = jm_->ListJobs(r, who).value();
      for (const auto& j : page.jobs()) out.push_back(j.id());
      if (page.next_page_token().empty()) return out;
      r.set_page_token(page.next_page_token());
    }
  };
  v1::ListJobsRequest r;
  r.set_page_size(1);  // every filter across pages of one
  EXPECT_EQ(ids(r, admin), (std::vector<std::string>{c.id(), b.id(), a.id()}));
  EXPECT_EQ(ids(r, alice), (std::vector<std::string>{a.id()})) << "only her own";
  r.add_states(v1::JOB_CANCELLED);
  EXPECT_EQ(ids(r, admin), (std::vector<std::string>{c.id()}));
  r.clear_states();
  r.set_name("FASHION");
  EXPECT_EQ(ids(r, admin), (std::vector<std::string>{c.id(), a.id()}));
  r.set_name("");
  r.set_owner("bob");
  EXPECT_EQ(ids(r, admin), (std::vector<std::string>{c.id(), b.id()}));
  r.set_owner("");
  (*r.mutable_labels())["team"] = "vision";
  EXPECT_EQ(ids(r, admin), (std::vector<std::string>{b.id(), a.id()}));
  (*r.mutable_labels())["tier"] = "";  // present, any value
  EXPECT_EQ(ids(r, admin), (std::vector<std::string>{b.id()}));
  r.clear_labels();
  r.add_states(static_cast<v1::JobState>(1));  // the reserved JOB_PENDING
  EXPECT_THAT(std::string(jm_->ListJobs(r, admin).status().message()), HasSubstr("states[0]"));

  v1::JobSpec bad = TinySpec(1);
  (*bad.mutable_labels())["no spaces"] = "x";
  v1::SubmitJobRequest sr;
  *sr.mutable_spec() = bad;
  auto refused = jm_->SubmitJob(sr);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(refused.status().message()), HasSubstr("labels[no spaces]"));
}

// DeleteJob: a running job is refused; an ended one is gone with its trials, also after a
// restart, its idempotency key free again; other jobs untouched; only its owner or an admin.
TEST_F(JobManagerTest, AnEndedJobIsDeletedWithItsTrials) {
  v1::Job job = Submit(TinySpec(3), "key-1");
  std::string w = Register("w");
  auto l = Lease(w);
  ASSERT_TRUE(l.has_trial());
  ASSERT_EQ(l.lease().job_id(), job.id());
  v1::Job keep = Submit(TinySpec(1));
  auto running = jm_->DeleteJob(job.id());
  EXPECT_EQ(running.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(running.status().message()), HasSubstr("cancel it first"));
  ASSERT_TRUE(jm_->CancelJob(job.id()).ok());
  Principal other{"mallory", Role::kSubmit};
  EXPECT_EQ(jm_->DeleteJob(job.id(), other).status().code(), absl::StatusCode::kPermissionDenied);
  auto n = jm_->DeleteJob(job.id());
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_GE(n->trials_deleted(), 1);
  EXPECT_EQ(jm_->GetJob(job.id()).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(jm_->DeleteJob(job.id()).status().code(), absl::StatusCode::kNotFound);
  // The worker's lease on the cancelled trial is gone too: its report is refused, nothing breaks.
  EXPECT_FALSE(Report(w, l, 0.5).ok());
  ASSERT_TRUE(writer_->Flush(absl::Now() + absl::Seconds(10)).ok());
  Open();
  EXPECT_EQ(jm_->GetJob(job.id()).status().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(jm_->GetJob(keep.id()).ok());
  EXPECT_NE(Submit(TinySpec(3), "key-1").id(), job.id()) << "the key makes a new job";
}

// EnqueueCandidate: a known architecture becomes a queued trial, leased and finished like the
// strategy's own; duplicates, architectures outside the space or over the cost bounds, and a
// spent budget are refused with the field.
TEST_F(JobManagerTest, AKnownArchitectureIsEnqueuedAndTrained) {
  v1::Job job = Submit(TinySpec(3, /*parallel=*/1));
  std::string w = Register("w");
  auto first = Lease(w);
  ASSERT_TRUE(first.has_trial());
  const v1::Architecture& a = first.architecture();
  auto vary = [&](bool kernel, bool stem) {
    v1::Architecture v = a;
    auto* stage = v.mutable_mbconv()->mutable_stages(0);
    if (kernel) stage->set_kernel(stage->kernel() == 3 ? 5 : 3);
    if (stem) v.mutable_mbconv()->set_stem_channels(v.mbconv().stem_channels() == 8 ? 16 : 8);
    return v;
  };
  v1::EnqueueCandidateRequest r;
  r.set_job_id(job.id());
  *r.mutable_architecture() = vary(true, false);
  auto t = jm_->EnqueueCandidate(r);
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->id(), 1);
  EXPECT_EQ(t->state(), v1::TRIAL_QUEUED);
  EXPECT_GT(t->metrics().at("macs"), 0);
  EXPECT_EQ(jm_->EnqueueCandidate(r).status().code(), absl::StatusCode::kAlreadyExists);
  *r.mutable_architecture() = a;
  EXPECT_EQ(jm_->EnqueueCandidate(r).status().code(), absl::StatusCode::kAlreadyExists);
  r.mutable_architecture()->mutable_mbconv()->mutable_stages(0)->set_kernel(7);
  auto outside = jm_->EnqueueCandidate(r);
  EXPECT_EQ(outside.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(outside.status().message()),
              HasSubstr("architecture: is not in the job's search space"));
  *r.mutable_architecture() = vary(false, true);
  ASSERT_TRUE(jm_->EnqueueCandidate(r).ok());
  *r.mutable_architecture() = vary(true, true);
  auto spent = jm_->EnqueueCandidate(r);
  EXPECT_EQ(spent.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(spent.status().message()), HasSubstr("extend its budget first"));
  ASSERT_TRUE(Report(w, first, 0.5).ok());
  for (int id : {1, 2}) {
    auto next = Lease(w);
    ASSERT_TRUE(next.has_trial());
    EXPECT_EQ(next.lease().trial_id(), id) << "the enqueued trials";
    ASSERT_TRUE(Report(w, next, 0.6).ok());
  }
  EXPECT_EQ(jm_->GetJob(job.id())->state(), v1::JOB_SUCCEEDED);
  EXPECT_EQ(jm_->EnqueueCandidate(r).status().code(), absl::StatusCode::kFailedPrecondition);

  v1::JobSpec bounded = TinySpec(2);
  auto* c = bounded.add_constraints();
  c->set_metric("macs");
  c->set_upper(1);
  v1::Job b = Submit(bounded);
  r.set_job_id(b.id());
  auto costly = jm_->EnqueueCandidate(r);
  EXPECT_EQ(costly.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(costly.status().message()), HasSubstr("cost constraints"));
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

}  // namespace
}  // namespace nasforge

namespace nasforge {
namespace {

// The front kept as trials finish answers the default query exactly as a scan of every trial
// does (same members, same order, same count considered), for 1, 2 and 3 objectives, with
// ties, and after a restart rebuilds it from the store.
TEST_F(JobManagerTest, TheKeptFrontAnswersAsAFullScanDoes) {
  const std::vector<std::vector<std::pair<const char*, v1::Direction>>> sets = {
      {{"accuracy", v1::MAXIMIZE}},
      {{"accuracy", v1::MAXIMIZE}, {"macs", v1::MINIMIZE}},
      {{"accuracy", v1::MAXIMIZE}, {"params", v1::MINIMIZE}, {"macs", v1::MINIMIZE}}};
  std::vector<std::string> ids;
  for (const auto& objectives : sets) {
    v1::JobSpec spec = TinySpec(60, 60);
    *spec.mutable_search_space() = testing::LoadSpace("mbconv_small.yaml");
    for (const auto& [metric, direction] : objectives) {
      auto* o = spec.add_objectives();
      o->set_metric(metric);
      o->set_direction(direction);
    }
    v1::Job job = Submit(spec);
    ids.push_back(job.id());
    std::string w = Register("w");
    for (int i = 0; i < 60; ++i) {
      auto l = Lease(w);
      ASSERT_TRUE(l.has_trial());
      // Coarse accuracies: many ties; every seventh trial fails (not on any front).
      ASSERT_TRUE(Report(w, l, 0.5 + 0.1 * (i * 7919 % 5), /*failed=*/i % 7 == 3).ok());
    }
  }
  auto same = [&](const std::string& id, size_t k) {
    v1::QueryParetoRequest kept;
    kept.set_job_id(id);
    v1::QueryParetoRequest scan = kept;  // the same objectives, named: a scan of every trial
    for (const auto& [metric, direction] : sets[k]) {
      auto* o = scan.add_objectives();
      o->set_metric(metric);
      o->set_direction(direction);
    }
    auto a = jm_->QueryPareto(kept).value();
    auto b = jm_->QueryPareto(scan).value();
    ASSERT_GT(a.trials_size(), 0);
    ASSERT_EQ(a.trials_size(), b.trials_size()) << k;
    for (int i = 0; i < a.trials_size(); ++i) EXPECT_EQ(a.trials(i).id(), b.trials(i).id()) << k;
    EXPECT_EQ(a.considered(), b.considered());
  };
  // A query of its own (objectives, a constraint): the scan over the metric columns equals
  // SelectPareto over the trials' own metric maps.
  auto scan = [&](const std::string& id) {
    v1::QueryParetoRequest q;
    q.set_job_id(id);
    *q.add_objectives() = ParseObjective("accuracy:max").value();
    *q.add_objectives() = ParseObjective("params:min").value();
    *q.add_constraints() = ParseConstraint("accuracy>=0.6").value();
    auto got = jm_->QueryPareto(q).value();
    v1::ListCandidatesRequest lr;
    lr.set_job_id(id);
    lr.set_page_size(1000);
    auto all = jm_->ListCandidates(lr).value();
    std::vector<MetricMap> maps;
    std::vector<int64_t> trial_ids;
    for (const auto& t : all.trials()) {
      if (t.state() != v1::TRIAL_SUCCEEDED) continue;
      maps.emplace_back(t.metrics().begin(), t.metrics().end());
      trial_ids.push_back(t.id());
    }
    std::vector<const MetricMap*> ptrs;
    for (const auto& m : maps) ptrs.push_back(&m);
    size_t considered = 0;
    std::vector<size_t> want =
        SelectPareto(ptrs, {q.objectives().begin(), q.objectives().end()},
                     {q.constraints().begin(), q.constraints().end()}, &considered);
    ASSERT_EQ(got.trials_size(), static_cast<int>(want.size()));
    for (size_t i = 0; i < want.size(); ++i) EXPECT_EQ(got.trials(i).id(), trial_ids[want[i]]);
    EXPECT_EQ(got.considered(), static_cast<int>(considered));
  };
  for (size_t k = 0; k < sets.size(); ++k) same(ids[k], k);
  for (const std::string& id : ids) scan(id);
  ASSERT_TRUE(writer_->Flush().ok());
  Open();
  for (size_t k = 0; k < sets.size(); ++k) same(ids[k], k);
  for (const std::string& id : ids) scan(id);
}

}  // namespace
}  // namespace nasforge
