// WorkerRegistry alone: registration (ids, owners, field errors, row versions), liveness on a
// fake clock, and recovery's "known, not seen since".
#include "controller/worker_registry.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace nasforge {
namespace {

using ::testing::HasSubstr;

v1::RegisterWorkerRequest Req(const std::string& id) {
  v1::RegisterWorkerRequest r;
  r.set_worker_id(id);
  r.mutable_hardware()->set_name("cpu-1t");
  r.add_datasets("Fashion-MNIST");
  return r;
}

TEST(WorkerRegistryTest, RegistersChecksOwnersAndRaisesRowVersions) {
  FakeClock clock;
  WorkerRegistry reg(&clock, nullptr, absl::Seconds(5));
  const Principal alice{"alice", Role::kWorker}, bob{"bob", Role::kWorker};
  auto a = reg.Register(Req("w1"), alice);
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_FALSE(a->known);
  EXPECT_EQ(a->row.version(), 1u);
  EXPECT_EQ(a->row.owner(), "alice");
  EXPECT_EQ(a->row.datasets(0), "fashion-mnist");
  auto again = reg.Register(Req("w1"), alice);
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->known);
  EXPECT_EQ(again->row.version(), 2u);
  EXPECT_EQ(reg.Register(Req("w1"), bob).status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(reg.CheckOwner("w1", bob).code(), absl::StatusCode::kPermissionDenied);
  EXPECT_TRUE(reg.CheckOwner("w1", alice).ok());
  EXPECT_TRUE(reg.CheckOwner("unknown", bob).ok());
  auto assigned = reg.Register(Req(""), bob);
  ASSERT_TRUE(assigned.ok());
  EXPECT_THAT(assigned->row.id(), ::testing::StartsWith("worker-"));
  EXPECT_EQ(reg.Size(), 2u);
}

TEST(WorkerRegistryTest, FieldErrorsNameTheField) {
  FakeClock clock;
  WorkerRegistry reg(&clock, nullptr, absl::Seconds(5));
  v1::RegisterWorkerRequest r = Req("w");
  r.mutable_hardware()->clear_name();
  EXPECT_THAT(reg.Register(r, Principal::Local()).status().message(), HasSubstr("hardware.name"));
  r = Req("w");
  r.add_latency_runtimes("");
  EXPECT_THAT(WorkerRegistry::Validate(r).message(), HasSubstr("latency_runtimes[0]"));
  EXPECT_EQ(reg.Size(), 0u) << "refused means not applied";
}

TEST(WorkerRegistryTest, LivenessFollowsTheClockAndRecoveredWorkersAreNotLive) {
  FakeClock clock;
  WorkerRegistry reg(&clock, nullptr, absl::Seconds(5));
  v1::Worker old;
  old.set_id("old");
  reg.Load({old});
  EXPECT_TRUE(reg.Known("old"));
  EXPECT_TRUE(reg.Live().empty()) << "known, not seen since the restart";
  ASSERT_TRUE(reg.Register(Req("w1"), Principal::Local()).ok());
  EXPECT_EQ(reg.Live().size(), 1u);
  clock.Advance(absl::Seconds(46));  // 3 heartbeats + 30 s
  EXPECT_TRUE(reg.Live().empty());
  reg.Touch("w1");
  ASSERT_EQ(reg.Live().size(), 1u);
  EXPECT_EQ(reg.Live()[0].id(), "w1");
  EXPECT_EQ(reg.All().size(), 2u);
}

}  // namespace
}  // namespace nasforge
