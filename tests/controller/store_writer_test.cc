// StoreWriter with a scripted store: group commit, admission while the store fails, the bounded
// queue, a bounded stop, and ownership loss.
#include "controller/store_writer.h"

#include <atomic>
#include <string>

#include "absl/synchronization/notification.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace nasforge {
namespace {

using ::testing::HasSubstr;

// A store whose writes fail with `error` while it is set, and block while `gate` is closed.
class ScriptedStore final : public Store {
 public:
  absl::Mutex mu;
  absl::Status error ABSL_GUARDED_BY(mu);
  bool gate_open ABSL_GUARDED_BY(mu) = true;
  std::atomic<int> writes{0};
  std::atomic<size_t> records{0};

  absl::Status Write(const WriteBatch& b) override {
    absl::MutexLock l(&mu);
    auto open = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) { return gate_open; };
    mu.Await(absl::Condition(&open));
    ++writes;
    if (!error.ok()) return error;
    records += b.size();
    return absl::OkStatus();
  }
  absl::StatusOr<std::vector<v1::Job>> LoadJobs() override { return std::vector<v1::Job>{}; }
  absl::StatusOr<std::vector<v1::Trial>> LoadTrials(absl::string_view) override {
    return std::vector<v1::Trial>{};
  }
  absl::StatusOr<std::vector<v1::Worker>> LoadWorkers() override {
    return std::vector<v1::Worker>{};
  }
  absl::Status Ping() override { return absl::OkStatus(); }
  absl::StatusOr<int> SchemaVersion() override { return 2; }
  std::string Backend() const override { return "scripted"; }
  void Set(absl::Status e, bool open) {
    absl::MutexLock l(&mu);
    error = std::move(e);
    gate_open = open;
  }
};

WriteBatch OneTrial(int64_t id, uint64_t version) {
  WriteBatch b;
  v1::Trial t;
  t.set_job_id("j");
  t.set_id(id);
  t.set_version(version);
  b.trials.push_back(t);
  return b;
}

TEST(StoreWriterTest, NewerVersionsOfARowCollapseIntoOneWrite) {
  ScriptedStore store;
  store.Set(absl::OkStatus(), /*open=*/false);  // hold the first round so the rest queue up
  StoreWriter w(&store, nullptr);
  w.Enqueue(OneTrial(0, 1));
  for (uint64_t v = 2; v <= 10; ++v) w.Enqueue(OneTrial(1, v));
  store.Set(absl::OkStatus(), true);
  ASSERT_TRUE(w.Flush().ok());
  EXPECT_LE(store.records.load(), 3u) << "trial 1's nine versions are written once";
}

TEST(StoreWriterTest, WhileTheStoreFailsNothingIsAdmittedAndItRecovers) {
  ScriptedStore store;
  StoreWriter w(&store, nullptr);
  EXPECT_TRUE(w.Admit().ok());
  store.Set(absl::UnavailableError("disk is full"), true);
  uint64_t seq = w.Enqueue(OneTrial(0, 1));
  absl::Notification failed;
  w.WhenDurable(seq, [&](absl::Status s) {
    EXPECT_THAT(s.message(), HasSubstr("disk is full"));
    failed.Notify();
  });
  failed.WaitForNotification();
  EXPECT_FALSE(w.Healthy());
  EXPECT_EQ(w.Admit().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(w.Admit().message(), HasSubstr("nothing was changed"));
  store.Set(absl::OkStatus(), true);
  ASSERT_TRUE(w.Flush().ok());  // the failed batch was kept and retried
  EXPECT_TRUE(w.Healthy());
  EXPECT_TRUE(w.Admit().ok());
  EXPECT_EQ(store.records.load(), 1u);
}

TEST(StoreWriterTest, AFullQueueRefusesNewChanges) {
  ScriptedStore store;
  store.Set(absl::OkStatus(), /*open=*/false);
  StoreWriter::Options o;
  o.max_queued_records = 3;
  StoreWriter w(&store, nullptr, o);
  for (int i = 0; i < 3; ++i) w.Enqueue(OneTrial(i, 1));
  EXPECT_THAT(w.Admit().message(), HasSubstr("queue full"));
  store.Set(absl::OkStatus(), true);
  ASSERT_TRUE(w.Flush().ok());
  EXPECT_TRUE(w.Admit().ok());
}

TEST(StoreWriterTest, StopIsBoundedWhileTheStoreFails) {
  ScriptedStore store;
  store.Set(absl::UnavailableError("connection refused"), true);
  StoreWriter w(&store, nullptr);
  uint64_t seq = w.Enqueue(OneTrial(0, 1));
  absl::Notification told;
  w.WhenDurable(seq + 1, [&](absl::Status s) {
    EXPECT_FALSE(s.ok());
    told.Notify();
  });
  w.Enqueue(OneTrial(1, 1));
  EXPECT_EQ(w.Stop(absl::Now() + absl::Milliseconds(300)), 2u) << "two records never durable";
  EXPECT_TRUE(told.HasBeenNotified());
}

TEST(StoreWriterTest, LosingTheStoreIsFatalOnce) {
  ScriptedStore store;
  std::atomic<int> fatal{0};
  absl::Notification told;
  StoreWriter::Options o;
  o.on_fatal = [&](const absl::Status& s) {
    EXPECT_TRUE(absl::IsAborted(s));
    ++fatal;
    told.Notify();
  };
  store.Set(absl::AbortedError("lost ownership of the store"), true);
  StoreWriter w(&store, nullptr, o);
  w.Enqueue(OneTrial(0, 1));
  EXPECT_FALSE(w.Flush(absl::Now() + absl::Seconds(10)).ok());
  told.WaitForNotification();
  EXPECT_EQ(w.Stop(absl::Now() + absl::Seconds(1)), 1u);
  EXPECT_EQ(fatal.load(), 1);
  EXPECT_THAT(w.Admit().message(), HasSubstr("no longer the owner"));
}

TEST(StoreWriterTest, AFailedHealthProbeRefusesChangesUntilACommitSucceeds) {
  ScriptedStore store;
  StoreWriter w(&store, nullptr);
  w.SetProbeResult(absl::UnavailableError("connection refused"));
  EXPECT_THAT(w.Admit().message(), HasSubstr("connection refused"));
  EXPECT_TRUE(w.Healthy()) << "the probe alone does not mark the writer failed";
  w.Enqueue(OneTrial(0, 1));
  ASSERT_TRUE(w.Flush().ok());
  EXPECT_TRUE(w.Admit().ok());
}

}  // namespace
}  // namespace nasforge
