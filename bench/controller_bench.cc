#include "bench/controller_bench.h"

#include <grpcpp/grpcpp.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <fstream>
#include <mutex>
#include <random>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "client/unary_call.h"
#include "controller/server.h"
#include "core/jobspec.h"
#include "core/log.h"
#include "core/pareto.h"
#include "core/search_space.h"
#include "core/status.h"
#include "core/trial_state.h"
#include "nasforge/v1/nasforge.grpc.pb.h"

namespace nasforge {
namespace {

using SteadyClock = std::chrono::steady_clock;

double Ms(SteadyClock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

int64_t RssBytes() {
  std::ifstream in("/proc/self/statm");
  int64_t pages = 0, resident = 0;
  in >> pages >> resident;
  return resident * sysconf(_SC_PAGESIZE);
}

LatencyFigures Figures(std::vector<double> ms) {
  LatencyFigures f;
  f.calls = static_cast<int64_t>(ms.size());
  if (ms.empty()) return f;
  std::sort(ms.begin(), ms.end());
  auto at = [&](double q) {
    return ms[std::min(ms.size() - 1, static_cast<size_t>(q * ms.size()))];
  };
  f.p50_ms = at(0.50);
  f.p99_ms = at(0.99);
  f.max_ms = ms.back();
  return f;
}

// The synthetic oracle: accuracy in [40, 90) % from the architecture hash (16 hex digits), as a
// fraction unless `percent`.
double SyntheticAccuracy(const std::string& arch_hash, bool percent) {
  uint64_t h = 0;
  if (!absl::SimpleHexAtoi(arch_hash, &h)) h = std::hash<std::string>()(arch_hash);
  const double a = 40 + 50 * static_cast<double>(h % 1000003) / 1000003.0;
  return percent ? a : a / 100;
}

v1::JobSpec BenchJob(const v1::SearchSpace& space, const ControllerBenchOptions& o) {
  v1::JobSpec spec;
  spec.set_name(absl::StrCat("bench-controller-w", o.workers, "-t", o.trials));
  *spec.mutable_search_space() = space;
  spec.mutable_strategy()->set_name("random");
  spec.mutable_budget()->set_max_trials(o.trials);
  spec.mutable_budget()->set_max_parallel_trials(o.workers * o.batch);
  spec.mutable_budget()->set_epochs(1);
  spec.mutable_budget()->set_seed(o.seed);
  auto* acc = spec.add_objectives();
  acc->set_metric("accuracy");
  acc->set_direction(v1::MAXIMIZE);
  auto* params = spec.add_objectives();
  params->set_metric("params");
  params->set_direction(v1::MINIMIZE);
  // Workers answer without training: "tabular" for NAS-Bench-201 cells (accuracy in %), the
  // 28x28 one-channel "synthetic" data set for the other kinds (accuracy as a fraction).
  spec.mutable_training()->set_dataset(HasTables(space) ? "tabular" : "synthetic");
  spec.set_lease_seconds(60);
  return spec;
}

// What every worker thread shares.
struct Shared {
  int target = 0;
  int batch = 1;
  int trial_ms = 0;
  std::string job_id;
  std::atomic<int> acked{0};
  std::atomic<int> granted{0};  // trials leased so far, over all workers
  std::atomic<bool> stop{false};
  std::mutex mu;
  absl::Status error;  // the first failure (stops every worker)
  std::vector<double> lease_ms, report_ms;
  std::vector<SteadyClock::time_point> acks;
  int64_t empty_leases = 0;

  void Fail(absl::Status s) {
    std::lock_guard<std::mutex> l(mu);
    if (error.ok()) error = std::move(s);
    stop = true;
  }
};

// One unary call with a 60 s deadline; errors name the call.
template <typename Stub, typename Request, typename Response>
absl::Status Unary(Stub& stub,
                   grpc::Status (Stub::*method)(grpc::ClientContext*, const Request&, Response*),
                   const Request& request, Response* response, const char* what) {
  absl::StatusOr<Response> r = UnaryCall(stub, method, request, absl::Seconds(60));
  if (!r.ok())
    return absl::Status(r.status().code(), absl::StrCat(what, ": ", r.status().message()));
  *response = *std::move(r);
  return absl::OkStatus();
}

void Worker(int index, const ChannelOptions& channel, Shared* shared) {
  ChannelOptions co = channel;
  co.args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);  // its own connection, like a process
  auto ch = OpenChannel(co);
  if (!ch.ok()) return shared->Fail(ch.status());
  auto workers = v1::WorkerService::NewStub(*ch);
  auto jobs = v1::JobService::NewStub(*ch);
  v1::RegisterWorkerRequest reg;
  reg.set_worker_id(absl::StrCat("bench-w", index));
  reg.set_new_process(true);
  reg.mutable_hardware()->set_name("bench");
  reg.mutable_hardware()->set_accelerator("none");
  v1::RegisterWorkerResponse who;
  if (auto s =
          Unary(*workers, &v1::WorkerService::Stub::RegisterWorker, reg, &who, "RegisterWorker");
      !s.ok()) {
    return shared->Fail(s);
  }
  std::vector<double> lease_ms, report_ms;
  std::vector<SteadyClock::time_point> acks;
  int64_t empty = 0, empty_in_a_row = 0;
  std::mt19937 rng(static_cast<uint32_t>(index) * 7919u + 1u);
  const int batch = std::max(1, shared->batch);
  v1::LeaseTrialRequest lr;
  lr.set_worker_id(who.worker_id());
  lr.set_max_trials(batch);
  // The grants in hand: from LeaseTrial, then from each report's answer (one call per batch).
  std::vector<v1::LeaseTrialResponse> held;
  auto take = [&held, shared](v1::LeaseTrialResponse* grants) {
    held.clear();
    if (!grants->has_trial()) return;
    for (v1::LeaseTrialResponse& g : *grants->mutable_more()) held.push_back(std::move(g));
    grants->clear_more();
    held.insert(held.begin(), std::move(*grants));
    shared->granted.fetch_add(static_cast<int>(held.size()));
  };
  while (!shared->stop && shared->acked.load() < shared->target) {
    // Every trial of the job is leased (bench trials never fail or expire): nothing is left to
    // ask for, and polling for it would only load the machine the last reports run on.
    if (held.empty() && shared->granted.load() >= shared->target) break;
    if (held.empty()) {
      v1::LeaseTrialResponse lease;
      const auto t0 = SteadyClock::now();
      if (auto s = Unary(*workers, &v1::WorkerService::Stub::LeaseTrial, lr, &lease, "LeaseTrial");
          !s.ok()) {
        return shared->Fail(s);
      }
      lease_ms.push_back(Ms(SteadyClock::now() - t0));
      if (!lease.has_trial()) {
        ++empty;
        if (++empty_in_a_row % 50 == 0) {  // the job may have ended (or failed)
          v1::GetJobRequest g;
          g.set_job_id(shared->job_id);
          v1::Job job;
          if (auto s = Unary(*jobs, &v1::JobService::Stub::GetJob, g, &job, "GetJob"); !s.ok()) {
            return shared->Fail(s);
          }
          if (JobTerminal(job.state())) break;
        }
        std::this_thread::sleep_for(
            std::chrono::milliseconds(std::clamp(lease.retry_after_ms(), 1, 5)));
        continue;
      }
      empty_in_a_row = 0;
      take(&lease);
    }
    // The "training" (0: none), so that latency is measured below saturation (the figure for
    // many workers) instead of as queueing: uniform in [trial_ms / 2, 3 trial_ms / 2], so that
    // workers started together do not stay in lockstep (real trials differ in length).
    if (shared->trial_ms > 0) {
      std::uniform_int_distribution<int> jitter(shared->trial_ms / 2, shared->trial_ms * 3 / 2);
      std::this_thread::sleep_for(std::chrono::milliseconds(jitter(rng)));
    }
    // Report what is held and lease as many again, in one call.
    v1::ReportResultsRequest rr;
    rr.set_worker_id(who.worker_id());
    const int remaining = shared->target - shared->acked.load();
    rr.set_lease_next(std::clamp(remaining - static_cast<int>(held.size()), 0, batch));
    for (const v1::LeaseTrialResponse& g : held) {
      v1::ReportResultRequest* r = rr.add_reports();
      *r->mutable_lease() = g.lease();
      r->set_hardware_profile("bench");
      (*r->mutable_metrics())["accuracy"] =
          SyntheticAccuracy(g.arch_hash(), g.training().dataset() == "tabular");
      (*r->mutable_metrics())["epochs"] = 1;
    }
    v1::ReportResultsResponse ack;
    const auto t2 = SteadyClock::now();
    if (auto s =
            Unary(*workers, &v1::WorkerService::Stub::ReportResults, rr, &ack, "ReportResults");
        !s.ok()) {
      return shared->Fail(s);
    }
    const auto t3 = SteadyClock::now();
    report_ms.push_back(Ms(t3 - t2));
    for (int i = 0; i < ack.outcomes_size(); ++i) {
      if (ack.outcomes(i).code() != 0) {
        return shared->Fail(absl::InternalError(
            absl::StrCat("ReportResults: trial ", rr.reports(i).lease().trial_id(),
                         " refused: ", ack.outcomes(i).message())));
      }
      acks.push_back(t3);
    }
    shared->acked.fetch_add(ack.outcomes_size());
    take(ack.mutable_next());
  }
  std::lock_guard<std::mutex> l(shared->mu);
  shared->lease_ms.insert(shared->lease_ms.end(), lease_ms.begin(), lease_ms.end());
  shared->report_ms.insert(shared->report_ms.end(), report_ms.begin(), report_ms.end());
  shared->acks.insert(shared->acks.end(), acks.begin(), acks.end());
  shared->empty_leases += empty;
}

}  // namespace

absl::StatusOr<ControllerBenchResult> RunControllerBench(const ControllerBenchOptions& o) {
  if (o.workers < 1) return absl::InvalidArgumentError("--workers must be >= 1");
  if (o.trials < 1) return absl::InvalidArgumentError("--trials must be >= 1");
  if (o.batch < 1 || o.batch > 64) return absl::InvalidArgumentError("--batch must be in [1, 64]");
  std::ifstream in(o.space_file);
  if (!in) return absl::InvalidArgumentError(absl::StrCat("--space: cannot read ", o.space_file));
  std::string yaml((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  v1::SearchSpace space;
  NF_RETURN_IF_ERROR(YamlToMessage(yaml, &space));
  NF_RETURN_IF_ERROR(ValidateSearchSpace(space, "search_space"));
  // Random search refuses duplicates: leave room so that sampling never runs dry.
  if (SpaceSize(space) < 2 * static_cast<uint64_t>(o.trials)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--trials: ", o.trials, " needs a space of at least twice as many architectures; ",
        o.space_file, " has ", SpaceSize(space),
        " (use a larger space, e.g. "
        "search_spaces/mbconv_small.yaml or mbconv_imagenet.yaml)"));
  }

  ControllerBenchResult r;
  r.workers = o.workers;
  r.batch = o.batch;
  r.trial_ms = o.trial_ms;
  std::unique_ptr<Controller> controller;
  ControllerOptions co;
  ChannelOptions channel = o.channel;
  const int64_t rss_before = RssBytes();
  if (o.controller.empty()) {
    if (o.store_url.empty()) return absl::InvalidArgumentError("--store is required");
    co.listen = "127.0.0.1:0";
    co.metrics_listen = "";
    co.store_url = o.store_url;
    NF_ASSIGN_OR_RETURN(controller, Controller::Start(co));
    channel.target = absl::StrCat("127.0.0.1:", controller->port());
    r.store = o.store_url.substr(0, o.store_url.find("://"));
  } else {
    channel.target = o.controller;
    r.store = "remote";
  }
  NF_ASSIGN_OR_RETURN(auto ch, OpenChannel(channel));
  auto jobs = v1::JobService::NewStub(ch);

  Shared shared;
  shared.target = o.trials;
  shared.batch = o.batch;
  shared.trial_ms = o.trial_ms;
  {
    v1::SubmitJobRequest req;
    *req.mutable_spec() = BenchJob(space, o);
    v1::Job job;
    NF_RETURN_IF_ERROR(Unary(*jobs, &v1::JobService::Stub::SubmitJob, req, &job, "SubmitJob"));
    shared.job_id = job.id();
  }
  Log(LogLevel::kInfo, "bench_started",
      {{"job", shared.job_id}, {"workers", o.workers}, {"trials", o.trials}, {"store", r.store}});
  const auto start = SteadyClock::now();
  std::vector<std::thread> threads;
  for (int i = 0; i < o.workers; ++i) threads.emplace_back(Worker, i, channel, &shared);
  for (auto& t : threads) t.join();
  if (!shared.error.ok()) return shared.error;
  std::sort(shared.acks.begin(), shared.acks.end());
  r.trials = static_cast<int>(shared.acks.size());
  if (r.trials == 0) return absl::InternalError("no trial was acknowledged");
  r.seconds = std::chrono::duration<double>(shared.acks.back() - start).count();
  r.trials_per_second = r.trials / std::max(1e-9, r.seconds);
  r.lease = Figures(std::move(shared.lease_ms));
  r.report = Figures(std::move(shared.report_ms));
  r.empty_leases = shared.empty_leases;
  const int w = std::min(o.window, r.trials);
  r.early_ms_per_trial = Ms(shared.acks[w - 1] - start) / w;
  r.late_ms_per_trial = w < r.trials ? Ms(shared.acks.back() - shared.acks[r.trials - 1 - w]) / w
                                     : r.early_ms_per_trial;
  r.late_over_early = r.late_ms_per_trial / std::max(1e-9, r.early_ms_per_trial);

  {
    v1::QueryParetoRequest q;
    q.set_job_id(shared.job_id);
    v1::QueryParetoResponse front;
    const auto t0 = SteadyClock::now();
    NF_RETURN_IF_ERROR(Unary(*jobs, &v1::JobService::Stub::QueryPareto, q, &front, "QueryPareto"));
    r.pareto_query_ms = Ms(SteadyClock::now() - t0);
    r.pareto_front_size = front.trials_size();
    // Objectives and a constraint of the caller's own: the scan of every trial.
    for (const char* o : {"accuracy:max", "params:min", "macs:min"}) {
      NF_ASSIGN_OR_RETURN(*q.add_objectives(), ParseObjective(o));
    }
    NF_ASSIGN_OR_RETURN(*q.add_constraints(),
                        ParseConstraint(HasTables(space) ? "accuracy>=50" : "accuracy>=0.5"));
    const auto t1 = SteadyClock::now();
    NF_RETURN_IF_ERROR(Unary(*jobs, &v1::JobService::Stub::QueryPareto, q, &front, "QueryPareto"));
    r.scan_query_ms = Ms(SteadyClock::now() - t1);
    r.scan_front_size = front.trials_size();
    r.scan_considered = front.considered();
  }
  if (controller) {
    r.rss_bytes_per_trial = static_cast<double>(RssBytes() - rss_before) / r.trials;
    controller->Shutdown();
    controller.reset();
    if (o.measure_recovery) {
      const auto t0 = SteadyClock::now();
      NF_ASSIGN_OR_RETURN(controller, Controller::Start(co));
      r.recovery_seconds = std::chrono::duration<double>(SteadyClock::now() - t0).count();
      controller->Shutdown();
    }
  }
  return r;
}

}  // namespace nasforge
