// Fewer round trips per trial: LeaseTrial granting up to N trials, a report that leases the next
// trial in the same call, and several reports in one call. Each piece is the one-trial logic
// (LeaseOne, ReportResult) applied in order; the rpc layer answers once the whole call's writes
// are durable, and undoes the grants (AbandonGrants) if they are not.
#include <string>

#include "absl/strings/str_cat.h"
#include "controller/job_manager.h"
#include "core/log.h"
#include "core/status.h"

namespace nasforge {
namespace {

constexpr int kMaxGrantsPerCall = 64;
constexpr int kMaxReportsPerCall = 256;

absl::Status CheckCount(const char* field, int n, int most) {
  if (n < 0 || n > most) {
    return FieldError(field, absl::StrCat(n, " is out of range [0, ", most, "]"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<v1::LeaseTrialResponse> JobManager::LeaseTrial(const v1::LeaseTrialRequest& req) {
  NF_RETURN_IF_ERROR(CheckCount("max_trials", req.max_trials(), kMaxGrantsPerCall));
  NF_ASSIGN_OR_RETURN(v1::LeaseTrialResponse first, LeaseOne(req, /*measure=*/true));
  // Later grants stop at the first "nothing now"; an error after the first grant ends the batch
  // with what was granted (those grants are staged and become durable with the call).
  for (int i = 1; i < req.max_trials() && first.has_trial(); ++i) {
    absl::StatusOr<v1::LeaseTrialResponse> more = LeaseOne(req, /*measure=*/false);
    if (!more.ok() || !more->has_trial()) break;
    *first.add_more() = std::move(more).value();
  }
  return first;
}

absl::StatusOr<v1::ReportResultResponse> JobManager::ReportAndLease(
    const v1::ReportResultRequest& req) {
  NF_RETURN_IF_ERROR(CheckCount("lease_next", req.lease_next(), kMaxGrantsPerCall));
  NF_RETURN_IF_ERROR(ReportResult(req));
  v1::ReportResultResponse resp;
  if (req.lease_next() > 0)
    *resp.mutable_next() = LeaseAfterReport(req.worker_id(), req.lease_next());
  return resp;
}

absl::StatusOr<v1::ReportResultsResponse> JobManager::ReportResults(
    const v1::ReportResultsRequest& req) {
  if (req.reports().empty()) return FieldError("reports", "needs at least one report");
  NF_RETURN_IF_ERROR(CheckCount("reports", req.reports_size(), kMaxReportsPerCall));
  NF_RETURN_IF_ERROR(CheckCount("lease_next", req.lease_next(), kMaxGrantsPerCall));
  for (int i = 0; i < req.reports_size(); ++i) {
    const v1::ReportResultRequest& r = req.reports(i);
    if (!r.worker_id().empty() && r.worker_id() != req.worker_id()) {
      return FieldError(absl::StrCat("reports[", i, "].worker_id"),
                        "differs from the call's worker_id (a call reports for one worker)");
    }
    if (r.lease_next() != 0) {
      return FieldError(absl::StrCat("reports[", i, "].lease_next"),
                        "set lease_next on the call, not on a report");
    }
  }
  v1::ReportResultsResponse resp;
  for (const v1::ReportResultRequest& r : req.reports()) {
    absl::Status st = ReportResultAs(req.worker_id(), r);
    v1::ReportOutcome* out = resp.add_outcomes();
    out->set_code(static_cast<int>(st.code()));
    out->set_message(std::string(st.message()));
  }
  if (req.lease_next() > 0)
    *resp.mutable_next() = LeaseAfterReport(req.worker_id(), req.lease_next());
  return resp;
}

v1::LeaseTrialResponse JobManager::LeaseAfterReport(const std::string& worker_id, int max_trials) {
  v1::LeaseTrialRequest lr;
  lr.set_worker_id(worker_id);
  lr.set_max_trials(max_trials);
  absl::StatusOr<v1::LeaseTrialResponse> next = LeaseTrial(lr);
  if (next.ok()) return *std::move(next);
  // The report stands; the worker asks again with LeaseTrial, which answers the error itself.
  Log(LogLevel::kWarn, "lease_after_report_skipped",
      {{"worker", worker_id}, {"error", next.status().message()}});
  v1::LeaseTrialResponse none;
  none.set_retry_after_ms(static_cast<int>(absl::ToInt64Milliseconds(options_.idle_retry)));
  return none;
}

void JobManager::AbandonGrants(const v1::LeaseTrialResponse& grants, const std::string& worker_id) {
  if (grants.has_trial()) AbandonLease(grants.lease(), worker_id);
  for (const v1::LeaseTrialResponse& g : grants.more()) AbandonLease(g.lease(), worker_id);
}

void JobManager::WhenDurable(std::function<void(absl::Status)> done) {
  writer_->WhenDurable(writer_->LastEnqueued(), std::move(done));
}

void JobManager::WhenGrantsDurable(const v1::LeaseTrialResponse* grants, std::string worker_id,
                                   std::function<void(absl::Status)> done) {
  writer_->WhenDurable(writer_->LastEnqueued(), [this, grants, worker = std::move(worker_id),
                                                 done = std::move(done)](absl::Status s) {
    if (!s.ok()) AbandonGrants(*grants, worker);
    done(std::move(s));
  });
}

}  // namespace nasforge
