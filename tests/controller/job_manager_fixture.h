// The JobManager tests' fixture: a real SQLite store in a temporary file, a StoreWriter, a fake
// clock, and helpers to register workers, lease, report and submit. Shared by
// job_manager_test.cc (jobs, strategies, Pareto, watchers), job_manager_lease_test.cc (leases,
// fencing, heartbeats, reports, placement) and job_manager_concurrency_test.cc (recovery, store
// outages, decision order, locks under concurrency).
#pragma once

#include <unistd.h>

#include <atomic>
#include <cmath>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/notification.h"
#include "controller/job_manager.h"
#include "core/cost.h"
#include "core/early_stopping.h"
#include "core/search_space.h"
#include "core/strategies/registry.h"
#include "core/test_hooks.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace nasforge {

inline v1::JobSpec TinySpec(int max_trials, int parallel = 2) {
  v1::JobSpec s;
  s.set_name("tiny");
  auto* m = s.mutable_search_space()->mutable_mbconv();
  m->set_resolution(28);
  m->set_in_channels(1);
  m->set_num_classes(10);
  m->add_stem_channels(8);
  m->add_stem_channels(16);
  auto* st = m->add_stages();
  st->set_stride(2);
  for (int k : {3, 5}) st->add_kernel(k);
  for (int e : {1, 3}) st->add_expansion(e);
  st->add_repeats(1);
  st->add_channels(16);
  st->add_se_ratio(0);
  s.mutable_budget()->set_max_trials(max_trials);
  s.mutable_budget()->set_max_parallel_trials(parallel);
  s.mutable_budget()->set_seed(3);
  s.set_lease_seconds(30);
  return s;  // 2 * 2 * 2 = 8 architectures
}

class JobManagerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = absl::StrCat(std::filesystem::temp_directory_path().string(), "/jm-", getpid(), "-",
                         ::testing::UnitTest::GetInstance()->current_test_info()->name(), ".db");
    std::filesystem::remove(path_);
    Open();
  }
  void TearDown() override {
    jm_.reset();
    writer_.reset();
    store_.reset();
    std::filesystem::remove(path_);
  }
  void Open() {
    jm_.reset();
    writer_.reset();
    store_.reset();
    store_ = std::move(OpenStore("sqlite://" + path_).value());
    writer_ = std::make_unique<StoreWriter>(store_.get(), nullptr);
    jm_ = std::make_unique<JobManager>(store_.get(), writer_.get(), &clock_, nullptr);
    ASSERT_TRUE(jm_->Recover().ok());
  }
  // A worker of hardware profile `profile` with `threads`, measuring latency if `measures`, making
  // the compressed variants of `compression` kinds.
  std::string RegisterAs(const std::string& id, const std::string& profile, int threads,
                         bool measures, const std::vector<std::string>& compression = {}) {
    v1::RegisterWorkerRequest r;
    r.set_worker_id(id);
    r.mutable_hardware()->set_name(profile);
    r.mutable_hardware()->set_threads(threads);
    r.set_measures_latency(measures);
    for (const std::string& k : compression) r.add_compression(k);
    return jm_->RegisterWorker(r).value().worker_id();
  }
  // Reports `p50` (p90, p99 a little above) as the latency of measurement `task`, held by
  // `worker`; waits until the store has it.
  absl::Status Measured(const std::string& worker, const v1::MeasureTask& task, double p50) {
    v1::ReportMeasurementRequest r;
    r.set_worker_id(worker);
    r.set_token(task.token());
    r.set_p50_ms(p50);
    r.set_p90_ms(p50 * 1.1);
    r.set_p99_ms(p50 * 1.2);
    r.set_spread(0.02);
    r.set_runs(30);
    r.set_timer("steady_clock");
    absl::Status st = jm_->ReportMeasurement(r);
    if (st.ok()) WaitDurable();
    return st;
  }
  void WaitDurable() {
    absl::Notification done;
    writer_->WhenDurable(writer_->LastEnqueued(), [&](absl::Status) { done.Notify(); });
    done.WaitForNotification();
  }
  // `memory`: the worker's declared memory in bytes (0: undeclared, takes anything).
  std::string Register(const std::string& id, int64_t memory = 0) {
    v1::RegisterWorkerRequest r;
    r.set_worker_id(id);
    r.mutable_hardware()->set_name("cpu-1t");
    r.mutable_hardware()->set_memory_bytes(memory);
    return jm_->RegisterWorker(r).value().worker_id();
  }
  v1::LeaseTrialResponse Lease(const std::string& worker) {
    v1::LeaseTrialRequest r;
    r.set_worker_id(worker);
    return jm_->LeaseTrial(r).value();
  }
  absl::Status Report(const std::string& worker, const v1::LeaseTrialResponse& l, double acc,
                      bool failed = false) {
    v1::ReportResultRequest r;
    r.set_worker_id(worker);
    *r.mutable_lease() = l.lease();
    r.set_failed(failed);
    if (failed) r.set_error("boom");
    (*r.mutable_metrics())["accuracy"] = acc;
    r.set_hardware_profile("cpu-1t");
    return jm_->ReportResult(r);
  }
  v1::Job Submit(const v1::JobSpec& spec, const std::string& key = "") {
    v1::SubmitJobRequest r;
    *r.mutable_spec() = spec;
    r.set_idempotency_key(key);
    return jm_->SubmitJob(r).value();
  }

  FakeClock clock_;
  std::string path_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<StoreWriter> writer_;
  std::unique_ptr<JobManager> jm_;
};

}  // namespace nasforge
