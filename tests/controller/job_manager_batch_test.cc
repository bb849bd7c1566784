// Batched leases and reports: LeaseTrial with max_trials, a report that leases the next trial,
// ReportResults with one outcome per report, and the refusals that name their field.
#include <cstdint>
#include <set>
#include <string>

#include "tests/controller/job_manager_fixture.h"

namespace nasforge {
namespace {

using ::testing::HasSubstr;

v1::ReportResultRequest Result(const v1::LeaseTrialResponse& l, double acc) {
  v1::ReportResultRequest r;
  *r.mutable_lease() = l.lease();
  (*r.mutable_metrics())["accuracy"] = acc;
  return r;
}

v1::LeaseTrialRequest LeaseRequest(const std::string& worker, int max_trials) {
  v1::LeaseTrialRequest r;
  r.set_worker_id(worker);
  r.set_max_trials(max_trials);
  return r;
}

TEST_F(JobManagerTest, LeaseTrialGrantsUpToMaxTrialsEachALeaseOfItsOwn) {
  v1::Job job = Submit(TinySpec(8, /*parallel=*/3));
  std::string w = Register("w");
  v1::LeaseTrialRequest r = LeaseRequest(w, 5);
  v1::LeaseTrialResponse got = jm_->LeaseTrial(r).value();
  ASSERT_TRUE(got.has_trial());
  ASSERT_EQ(got.more_size(), 2) << "max_parallel_trials 3 caps the batch";
  std::set<int64_t> ids = {got.lease().trial_id()};
  for (const auto& g : got.more()) {
    EXPECT_TRUE(g.has_trial());
    ids.insert(g.lease().trial_id());
    EXPECT_TRUE(g.lease().has_deadline());
  }
  EXPECT_EQ(ids.size(), 3u);
  EXPECT_EQ(jm_->GetJob(job.id())->counts().running(), 3);
  r.set_max_trials(65);
  absl::Status st = jm_->LeaseTrial(r).status();
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(st.message(), HasSubstr("max_trials"));
}

TEST_F(JobManagerTest, AReportLeasesTheNextTrialInTheSameCall) {
  v1::Job job = Submit(TinySpec(3, /*parallel=*/1));
  std::string w = Register("w");
  v1::LeaseTrialResponse l = Lease(w);
  for (int i = 0; i < 3; ++i) {
    v1::ReportResultRequest r = Result(l, 0.5 + 0.1 * i);
    r.set_worker_id(w);
    r.set_lease_next(1);
    v1::ReportResultResponse a = jm_->ReportAndLease(r).value();
    if (i < 2) {
      ASSERT_TRUE(a.next().has_trial()) << i;
      EXPECT_NE(a.next().lease().trial_id(), l.lease().trial_id());
      l = a.next();
    } else {
      EXPECT_FALSE(a.next().has_trial()) << "the budget is spent";
      EXPECT_GT(a.next().retry_after_ms(), 0);
    }
  }
  v1::Job done = jm_->GetJob(job.id()).value();
  EXPECT_EQ(done.counts().succeeded(), 3);
  EXPECT_EQ(done.state(), v1::JOB_SUCCEEDED);
  // A refused report leases nothing: the error is the report's.
  v1::ReportResultRequest late = Result(l, 0.9);
  late.set_worker_id("someone-else");
  late.set_lease_next(1);
  EXPECT_FALSE(jm_->ReportAndLease(late).ok());
}

TEST_F(JobManagerTest, ReportResultsDecidesEachReportOnItsOwnInOrder) {
  v1::Job job = Submit(TinySpec(8, /*parallel=*/4));
  std::string w = Register("w");
  v1::LeaseTrialResponse got = jm_->LeaseTrial(LeaseRequest(w, 3)).value();
  ASSERT_EQ(got.more_size(), 2);
  v1::ReportResultsRequest rr;
  rr.set_worker_id(w);
  *rr.add_reports() = Result(got, 0.6);
  v1::ReportResultRequest stale = Result(got.more(0), 0.7);
  stale.mutable_lease()->set_epoch(stale.lease().epoch() + 100);  // a forged fencing token
  *rr.add_reports() = stale;
  *rr.add_reports() = Result(got.more(1), 0.8);
  rr.set_lease_next(2);
  v1::ReportResultsResponse a = jm_->ReportResults(rr).value();
  ASSERT_EQ(a.outcomes_size(), 3);
  EXPECT_EQ(a.outcomes(0).code(), 0);
  EXPECT_EQ(a.outcomes(1).code(), static_cast<int>(absl::StatusCode::kFailedPrecondition));
  EXPECT_FALSE(a.outcomes(1).message().empty());
  EXPECT_EQ(a.outcomes(2).code(), 0) << "a refused report does not stop the ones after it";
  ASSERT_TRUE(a.next().has_trial());
  EXPECT_EQ(a.next().more_size(), 1);
  v1::Job j = jm_->GetJob(job.id()).value();
  EXPECT_EQ(j.counts().succeeded(), 2);
  EXPECT_EQ(j.counts().running(), 3) << "the stale one still runs; two new grants";
}

TEST_F(JobManagerTest, AMalformedReportResultsCallAppliesNothingAndNamesTheField) {
  v1::Job job = Submit(TinySpec(4));
  std::string w = Register("w");
  v1::LeaseTrialResponse l = Lease(w);
  auto refused = [&](v1::ReportResultsRequest rr, const std::string& field) {
    absl::StatusOr<v1::ReportResultsResponse> a = jm_->ReportResults(rr);
    ASSERT_EQ(a.status().code(), absl::StatusCode::kInvalidArgument) << field;
    EXPECT_THAT(a.status().message(), HasSubstr(field));
  };
  v1::ReportResultsRequest rr;
  rr.set_worker_id(w);
  refused(rr, "reports");
  *rr.add_reports() = Result(l, 0.5);
  rr.set_lease_next(-1);
  refused(rr, "lease_next");
  rr.set_lease_next(0);
  rr.mutable_reports(0)->set_worker_id("other");
  refused(rr, "reports[0].worker_id");
  rr.mutable_reports(0)->set_worker_id("");
  rr.mutable_reports(0)->set_lease_next(1);
  refused(rr, "reports[0].lease_next");
  for (int i = 0; i < 257; ++i) *rr.add_reports() = Result(l, 0.5);
  refused(rr, "reports");
  EXPECT_EQ(jm_->GetJob(job.id())->counts().succeeded(), 0) << "nothing applied";
}

}  // namespace
}  // namespace nasforge
