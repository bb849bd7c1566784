// WorkerLoop logic with a fake controller and a fake trainer: the hand-back on Stop(), the
// STOP decision, failure reports and max_trials.
#include "worker/worker_loop.h"

#include <mutex>

#include "absl/synchronization/notification.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace nasforge {
namespace {

class FakeController : public ControllerClient {
 public:
  absl::StatusOr<v1::RegisterWorkerResponse> RegisterWorker(
      const v1::RegisterWorkerRequest& req) override {
    {
      std::lock_guard<std::mutex> l(mu);
      registrations.push_back(req);
    }
    v1::RegisterWorkerResponse r;
    r.set_worker_id("fake-worker");
    r.set_heartbeat_seconds(1);
    return r;
  }
  absl::StatusOr<v1::LeaseTrialResponse> LeaseTrial(const v1::LeaseTrialRequest&) override {
    std::lock_guard<std::mutex> l(mu);
    ++lease_calls;
    if (forget_worker_once) {
      forget_worker_once = false;
      return absl::FailedPreconditionError("worker_id: not registered");
    }
    return GrantLocked();
  }
  v1::LeaseTrialResponse GrantLocked() {
    v1::LeaseTrialResponse r;
    if (leases_left-- <= 0) {
      r.set_retry_after_ms(50);
      return r;
    }
    r.set_has_trial(true);
    r.mutable_lease()->set_job_id("j");
    r.mutable_lease()->set_trial_id(next_trial++);
    r.mutable_lease()->set_epoch(1);
    r.set_epochs(3);
    return r;
  }
  absl::StatusOr<v1::HeartbeatResponse> Heartbeat(const v1::HeartbeatRequest&) override {
    return v1::HeartbeatResponse{};
  }
  absl::StatusOr<v1::ReportProgressResponse> ReportProgress(
      const v1::ReportProgressRequest& req) override {
    std::lock_guard<std::mutex> l(mu);
    progress.push_back(req.point().epoch());
    v1::ReportProgressResponse r;
    r.set_decision(req.point().epoch() >= stop_at_epoch ? v1::STOP : v1::CONTINUE);
    return r;
  }
  absl::StatusOr<v1::ReportResultResponse> ReportResult(
      const v1::ReportResultRequest& req) override {
    std::lock_guard<std::mutex> l(mu);
    results.push_back(req);
    v1::ReportResultResponse r;
    if (req.lease_next() > 0 && grant_with_report) *r.mutable_next() = GrantLocked();
    return r;
  }

  std::mutex mu;
  int leases_left = 1;
  int lease_calls = 0;
  bool grant_with_report = true;  // answer lease_next with the next trial
  int next_trial = 0;
  int stop_at_epoch = 100;
  std::vector<int> progress;
  std::vector<v1::ReportResultRequest> results;
  std::vector<v1::RegisterWorkerRequest> registrations;
  bool forget_worker_once = false;
};

// Runs `epochs` epochs unless told to stop; can block in epoch 1 until released.
class FakeTrainer : public Trainer {
 public:
  absl::StatusOr<TrainResult> Train(const TrainRequest& req,
                                    const std::function<Verdict(const EpochReport&)>& on_epoch,
                                    const std::atomic<bool>& abort) override {
    if (fail) return absl::InternalError("out of memory");
    for (int e = 1; e <= req.epochs; ++e) {
      if (block_first_epoch) {
        started.Notify();
        while (!abort.load()) std::this_thread::yield();
      }
      if (abort.load()) return absl::AbortedError("aborted");
      EpochReport r;
      r.epoch = e;
      r.validation_accuracy = 0.1 * e;
      Verdict v = on_epoch(r);
      if (v == Verdict::kStop) {
        TrainResult res;
        res.stopped_early = true;
        res.metrics["accuracy"] = 0.1 * e;
        return res;
      }
    }
    TrainResult res;
    res.metrics["accuracy"] = 0.1 * req.epochs;
    return res;
  }
  std::vector<std::string> Datasets() const override { return datasets; }
  bool fail = false;
  bool block_first_epoch = false;
  std::vector<std::string> datasets;
  absl::Notification started;
};

WorkerOptions Options(int max_trials) {
  WorkerOptions o;
  o.hardware.set_name("cpu-1t");
  o.max_trials = max_trials;
  return o;
}

TEST(WorkerLoopTest, ReportsEveryEpochAndTheResult) {
  FakeController c;
  FakeTrainer t;
  WorkerLoop loop(&c, &t, Options(1), nullptr);
  ASSERT_TRUE(loop.Run().ok());
  EXPECT_THAT(c.progress, ::testing::ElementsAre(1, 2, 3));
  ASSERT_EQ(c.results.size(), 1u);
  EXPECT_FALSE(c.results[0].failed());
  EXPECT_DOUBLE_EQ(c.results[0].metrics().at("accuracy"), 0.3);
  EXPECT_EQ(c.results[0].hardware_profile(), "cpu-1t");
  EXPECT_EQ(c.results[0].lease_next(), 0) << "its last trial: asks for no other";
}
TEST(WorkerLoopTest, TheNextTrialComesWithTheReport) {
  FakeController c;
  c.leases_left = 5;
  FakeTrainer t;
  WorkerLoop loop(&c, &t, Options(3), nullptr);
  ASSERT_TRUE(loop.Run().ok());
  ASSERT_EQ(c.results.size(), 3u);
  EXPECT_EQ(c.lease_calls, 1) << "trials 2 and 3 came with the reports of 1 and 2";
  EXPECT_EQ(c.results[0].lease_next(), 1);
  EXPECT_EQ(c.results[1].lease_next(), 1);
  EXPECT_EQ(c.results[2].lease_next(), 0);
  EXPECT_EQ(c.results[2].lease().trial_id(), 2);
  EXPECT_EQ(loop.trials_done(), 3);
}
TEST(WorkerLoopTest, AReportWithoutANextTrialFallsBackToLeaseTrial) {
  FakeController c;
  c.leases_left = 5;
  c.grant_with_report = false;
  FakeTrainer t;
  WorkerLoop loop(&c, &t, Options(2), nullptr);
  ASSERT_TRUE(loop.Run().ok());
  ASSERT_EQ(c.results.size(), 2u);
  EXPECT_EQ(c.lease_calls, 2);
}

// Only the first registration of a process says it is new (the controller then frees leases an
// earlier process under the same id died holding); registering again when the controller forgot
// the worker does not.
// A trainer's data sets are registered, so the controller leases it only trials of those (a
// tabular worker never gets an image job, a LibTorch worker never a table's).
TEST(WorkerLoopTest, RegistersTheDataSetsItsTrainerTrains) {
  FakeController c;
  FakeTrainer t;
  t.datasets = {"tabular"};
  WorkerLoop loop(&c, &t, Options(1), nullptr);
  ASSERT_TRUE(loop.Run().ok());
  ASSERT_FALSE(c.registrations.empty());
  EXPECT_THAT(c.registrations[0].datasets(), ::testing::ElementsAre("tabular"));
}

TEST(WorkerLoopTest, OnlyTheFirstRegistrationSaysNewProcess) {
  FakeController c;
  c.forget_worker_once = true;
  FakeTrainer t;
  WorkerLoop loop(&c, &t, Options(1), nullptr);
  ASSERT_TRUE(loop.Run().ok());
  ASSERT_EQ(c.registrations.size(), 2u);
  EXPECT_TRUE(c.registrations[0].new_process());
  EXPECT_FALSE(c.registrations[1].new_process());
  EXPECT_EQ(c.registrations[1].worker_id(), "fake-worker") << "the id the controller gave";
}

TEST(WorkerLoopTest, StopDecisionEndsTrainingEarly) {
  FakeController c;
  c.stop_at_epoch = 2;
  FakeTrainer t;
  WorkerLoop loop(&c, &t, Options(1), nullptr);
  ASSERT_TRUE(loop.Run().ok());
  EXPECT_THAT(c.progress, ::testing::ElementsAre(1, 2));
  ASSERT_EQ(c.results.size(), 1u);
  EXPECT_TRUE(c.results[0].stopped_early());
}

TEST(WorkerLoopTest, TrainerErrorIsReportedAsAFailure) {
  FakeController c;
  FakeTrainer t;
  t.fail = true;
  WorkerLoop loop(&c, &t, Options(1), nullptr);
  ASSERT_TRUE(loop.Run().ok());
  ASSERT_EQ(c.results.size(), 1u);
  EXPECT_TRUE(c.results[0].failed());
  EXPECT_EQ(c.results[0].error(), "out of memory");
}

TEST(WorkerLoopTest, StopHandsTheCurrentTrialBack) {
  FakeController c;
  FakeTrainer t;
  t.block_first_epoch = true;
  WorkerLoop loop(&c, &t, Options(0), nullptr);
  std::thread stopper([&] {
    t.started.WaitForNotification();
    loop.Stop();  // what SIGTERM does
  });
  ASSERT_TRUE(loop.Run().ok());
  stopper.join();
  ASSERT_EQ(c.results.size(), 1u);
  EXPECT_TRUE(c.results[0].handed_back());
  EXPECT_FALSE(c.results[0].failed());
  EXPECT_EQ(loop.trials_done(), 0);
}

}  // namespace
}  // namespace nasforge
