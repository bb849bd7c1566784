#include "cli/job_client.h"

#include <chrono>
#include <random>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/status.h"
#include "report/format.h"

namespace nasforge::cli {
using namespace ::nasforge::report;  // NOLINT: the shared formatting of jobs, tables and plots

absl::Status WithHint(const absl::Status& s) {
  if (s.ok()) return s;
  std::string hint =
      absl::IsUnavailable(s) ? ": is nasforge-controller running at --controller?" : "";
  return absl::Status(
      s.code(), absl::StrCat(s.message(), " (", absl::StatusCodeToString(s.code()), hint, ")"));
}

absl::Status FromRpc(const grpc::Status& s) { return WithHint(FromGrpcStatus(s)); }

std::string NewIdempotencyKey() {
  std::random_device rd;
  return absl::StrFormat("cli-%08x%08x%08x%08x", rd(), rd(), rd(), rd());
}

absl::StatusOr<v1::Job> SubmitWithRetry(v1::JobService::Stub& stub,
                                        const v1::SubmitJobRequest& request, std::ostream& log) {
  constexpr int kAttempts = 5;
  for (int attempt = 1;; ++attempt) {
    absl::StatusOr<v1::Job> job =
        UnaryCall(stub, &v1::JobService::Stub::SubmitJob, request, kUnaryTimeout);
    if (job.ok()) return job;
    const bool transient =
        absl::IsUnavailable(job.status()) || absl::IsDeadlineExceeded(job.status());
    if (!transient || attempt >= kAttempts) return WithHint(job.status());
    log << "level=warn event=submit_retry attempt=" << attempt << " error=\""
        << job.status().message() << "\" key=" << request.idempotency_key() << "\n";
    std::this_thread::sleep_for(std::chrono::milliseconds(500 << attempt));
  }
}

absl::StatusOr<v1::Job> FollowJob(v1::JobService::Stub& stub, const std::string& job_id,
                                  std::ostream& progress, bool terminal) {
  grpc::ClientContext ctx;
  v1::WatchJobRequest req;
  req.set_job_id(job_id);
  auto reader = stub.WatchJob(&ctx, req);
  v1::JobEvent e;
  v1::Job last;
  auto last_print = std::chrono::steady_clock::now() - std::chrono::hours(1);
  while (reader->Read(&e)) {
    last = e.job();
    const double now =
        std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
    const auto t = std::chrono::steady_clock::now();
    const bool finished = e.kind() == "job_finished" || e.kind() == "trial_finished";
    if (terminal) {
      progress << "\r\033[K" << ProgressLine(last, now) << std::flush;
    } else if (finished || t - last_print > std::chrono::seconds(10)) {
      progress << ProgressLine(last, now) << "\n" << std::flush;
      last_print = t;
    }
  }
  if (terminal) progress << "\n";
  if (grpc::Status s = reader->Finish(); !s.ok()) return FromRpc(s);
  progress << "job " << job_id << " " << ShortState(v1::JobState_Name(last.state())) << "\n";
  return last;
}

absl::StatusOr<std::vector<v1::Trial>> AllCandidates(v1::JobService::Stub& stub,
                                                     const std::string& job_id) {
  std::vector<v1::Trial> out;
  v1::ListCandidatesRequest req;
  req.set_job_id(job_id);
  req.set_page_size(1000);
  do {
    NF_ASSIGN_OR_RETURN(v1::ListCandidatesResponse page,
                        Call(stub, &v1::JobService::Stub::ListCandidates, req));
    for (auto& t : *page.mutable_trials()) out.push_back(std::move(t));
    req.set_page_token(page.next_page_token());
  } while (!req.page_token().empty());
  return out;
}

}  // namespace nasforge::cli
