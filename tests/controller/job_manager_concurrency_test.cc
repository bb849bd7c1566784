// JobManager under faults and concurrency: recovery after restart (finish order), a failing
// store, decision order against commit order, strategy work outside the global lock, and many
// threads against one manager.
#include <cstdint>
#include <string>

#include "tests/controller/job_manager_fixture.h"

namespace nasforge {
namespace {

using ::testing::HasSubstr;

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

}  // namespace
}  // namespace nasforge
