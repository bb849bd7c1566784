// MeasurementBroker alone: one measurement per key shared by its waiters, first come first
// leased, fencing tokens, retries up to kAttempts, expiry, routing by runtime, and a deleted
// job's waiters forgotten.
#include "controller/measurement_broker.h"

#include <string>
#include <vector>

#include "core/hardware_targets.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace nasforge {
namespace {

using Waiter = MeasurementBroker::Waiter;
using ::testing::ElementsAre;

v1::HardwareTarget Target(const std::string& runtime = "libtorch") {
  v1::HardwareTarget t;
  t.set_name("job-name-for-it");
  t.set_profile("cpu-1t");
  t.set_batch_size(1);
  t.set_precision("fp32");
  t.set_runtime(runtime);
  return t;
}

v1::Worker Worker(const std::string& id, std::vector<std::string> runtimes = {}) {
  v1::Worker w;
  w.set_id(id);
  w.set_measures_latency(true);
  w.mutable_hardware()->set_name("cpu-1t");
  for (auto& r : runtimes) w.add_latency_runtimes(r);
  return w;
}

class MeasurementBrokerTest : public ::testing::Test {
 protected:
  std::optional<v1::MeasureTask> Grant(const v1::Worker& w) {
    return broker_.Grant(
        w, [this](const Waiter& x) { return !gone_.count(x.trial); },
        [](const std::vector<Waiter>&) { return absl::Seconds(30); });
  }
  void Wait(const std::string& hash, const Waiter& w, const v1::HardwareTarget& t = Target()) {
    broker_.Wait(LatencyKey(hash, t), v1::Architecture(), hash, t, w);
  }
  v1::ReportMeasurementRequest Result(const v1::MeasureTask& task, const std::string& worker,
                                      double p50 = 2.0) {
    v1::ReportMeasurementRequest r;
    r.set_worker_id(worker);
    r.set_token(task.token());
    r.set_p50_ms(p50);
    r.set_p90_ms(p50);
    r.set_p99_ms(p50);
    r.set_runs(5);
    return r;
  }

  FakeClock clock_;
  MeasurementBroker broker_{&clock_, nullptr};
  std::set<int64_t> gone_;
};

TEST_F(MeasurementBrokerTest, OneMeasurementPerKeySharedByItsWaitersAndCached) {
  Wait("h1", {"a", 0, "t"});
  Wait("h1", {"b", 3, "u"});  // another job, same architecture and setting
  Wait("h1", {"b", 3, "u"});  // idempotent
  Wait("h2", {"a", 1, "t"});
  EXPECT_EQ(broker_.Waiting(), 2u);
  auto task = Grant(Worker("w1"));
  ASSERT_TRUE(task.has_value());
  EXPECT_EQ(task->arch_hash(), "h1");  // first come, first measured
  EXPECT_EQ(task->target().name(), "") << "the setting, not a job's name for it";
  EXPECT_NE(task->token(), 0u);
  auto out = broker_.Report(Result(*task, "w1", 2.5));
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->kind, MeasurementBroker::Outcome::kMeasured);
  EXPECT_THAT(out->waiting, ElementsAre(Waiter{"a", 0, "t"}, Waiter{"b", 3, "u"}));
  EXPECT_DOUBLE_EQ(out->measurement.p50_ms(), 2.5);
  EXPECT_EQ(out->measurement.runtime(), "libtorch");
  auto cached = broker_.Cached(LatencyKey("h1", Target()));
  ASSERT_TRUE(cached.has_value());
  EXPECT_DOUBLE_EQ(cached->p50_ms(), 2.5);
  EXPECT_EQ(broker_.Waiting(), 1u);
  // The token is spent: a second report is stale.
  EXPECT_EQ(broker_.Report(Result(*task, "w1")).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST_F(MeasurementBrokerTest, ATokenIsOnlyItsHoldersAndFailuresRetryUpToTheLimit) {
  Wait("h1", {"a", 0, "t"});
  auto task = Grant(Worker("w1"));
  ASSERT_TRUE(task.has_value());
  EXPECT_FALSE(Grant(Worker("w2")).has_value()) << "leased already";
  EXPECT_EQ(broker_.Report(Result(*task, "w2")).status().code(),
            absl::StatusCode::kFailedPrecondition);
  for (int attempt = 1; attempt <= MeasurementBroker::kAttempts; ++attempt) {
    auto t = attempt == 1 ? task : Grant(Worker("w2"));
    ASSERT_TRUE(t.has_value()) << attempt;
    v1::ReportMeasurementRequest r;
    r.set_worker_id(attempt == 1 ? "w1" : "w2");
    r.set_token(t->token());
    r.set_failed(true);
    r.set_error("out of memory");
    auto out = broker_.Report(r);
    ASSERT_TRUE(out.ok());
    EXPECT_EQ(out->kind, attempt < MeasurementBroker::kAttempts
                             ? MeasurementBroker::Outcome::kRetry
                             : MeasurementBroker::Outcome::kFailed);
    if (out->kind == MeasurementBroker::Outcome::kFailed) {
      EXPECT_EQ(out->error, "out of memory");
      EXPECT_THAT(out->waiting, ElementsAre(Waiter{"a", 0, "t"}));
    }
  }
  EXPECT_EQ(broker_.Waiting(), 0u);
}

TEST_F(MeasurementBrokerTest, ExpiredLeasesRequeueAndUnplaceableOnesFail) {
  Wait("h1", {"a", 0, "t"});
  auto task = Grant(Worker("w1"));
  ASSERT_TRUE(task.has_value());
  clock_.Advance(absl::Seconds(31));
  auto failed = broker_.Expire([](const v1::HardwareTarget&) { return true; }, absl::Seconds(60));
  EXPECT_TRUE(failed.empty());
  EXPECT_EQ(broker_.Report(Result(*task, "w1")).status().code(),
            absl::StatusCode::kFailedPrecondition)
      << "an expired lease's report is stale";
  auto again = Grant(Worker("w2"));
  ASSERT_TRUE(again.has_value());
  EXPECT_NE(again->token(), task->token());
  clock_.Advance(absl::Seconds(31));
  (void)broker_.Expire([](const v1::HardwareTarget&) { return false; }, absl::Seconds(60));
  clock_.Advance(absl::Seconds(61));
  failed = broker_.Expire([](const v1::HardwareTarget&) { return false; }, absl::Seconds(60));
  ASSERT_EQ(failed.size(), 1u);
  EXPECT_THAT(failed[0].why, ::testing::HasSubstr("no live worker of profile 'cpu-1t'"));
  EXPECT_THAT(failed[0].waiting, ElementsAre(Waiter{"a", 0, "t"}));
}

TEST_F(MeasurementBrokerTest, RoutesByRuntimeAndForgetsWaitersThatLeft) {
  Wait("h1", {"a", 0, "t"}, Target("libtorch-cuda-graph"));
  EXPECT_FALSE(Grant(Worker("old")).has_value()) << "a worker from before runtimes: libtorch";
  EXPECT_FALSE(Grant(Worker("cpu", {"libtorch"})).has_value());
  Wait("h2", {"a", 1, "t"});
  gone_.insert(1);  // trial 1 left the queue: its measurement is dropped, not leased
  EXPECT_FALSE(Grant(Worker("cpu", {"libtorch"})).has_value());
  EXPECT_EQ(broker_.Waiting(), 1u);
  auto task = Grant(Worker("gpu", {"libtorch", "libtorch-cuda-graph"}));
  ASSERT_TRUE(task.has_value());
  EXPECT_EQ(task->target().runtime(), "libtorch-cuda-graph");
  Wait("h3", {"b", 0, "t"});
  broker_.ForgetJob("b");
  EXPECT_EQ(broker_.Waiting(), 1u) << "the leased one stays until its holder reports";
  broker_.ForgetJob("a");
  EXPECT_EQ(broker_.Waiting(), 1u);
  auto out = broker_.Report(Result(*task, "gpu"));
  ASSERT_TRUE(out.ok());
  EXPECT_TRUE(out->waiting.empty());
  EXPECT_EQ(broker_.Waiting(), 0u);
}

}  // namespace
}  // namespace nasforge
