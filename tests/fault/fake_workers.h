// Workers for the fault tests, over real gRPC: WorkerClient (one call each, with deadlines),
// FakeWorker (a tabular worker that sometimes crashes or fails, retrying its reports while the
// controller is away) and HeldLease (one lease the test holds itself).
#pragma once

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <chrono>
#include <random>
#include <string>
#include <thread>

#include "client/channel.h"
#include "gtest/gtest.h"
#include "nasforge/v1/nasforge.grpc.pb.h"
#include "tests/fault/invariant_checker.h"

namespace nasforge::testing {

inline std::chrono::system_clock::time_point In(int ms) {
  return std::chrono::system_clock::now() + std::chrono::milliseconds(ms);
}

// A channel that reconnects within a quarter second of a restarted controller (gRPC's default
// backoff grows to minutes, longer than these tests wait).
// A channel carrying `token` (the fault tests' controllers require tokens), plain text: the
// targets are loopback or the tests' own namespace hosts.
inline std::shared_ptr<grpc::Channel> Channel(const std::string& target, const std::string& token) {
  ChannelOptions o;
  o.target = target;
  o.token = token;
  o.insecure = true;
  o.args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 50);
  o.args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 50);
  o.args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 250);
  return OpenChannel(std::move(o)).value();
}

class WorkerClient {
 public:
  WorkerClient(std::shared_ptr<grpc::Channel> channel, std::string id)
      : stub_(v1::WorkerService::NewStub(channel)), id_(std::move(id)) {}

  const std::string& id() const { return id_; }

  grpc::Status Register() {
    grpc::ClientContext ctx;
    ctx.set_deadline(In(2000));
    v1::RegisterWorkerRequest r;
    r.set_worker_id(id_);
    r.mutable_hardware()->set_name("fake");
    for (const char* kind : {"int8", "prune", "distill"}) r.add_compression(kind);
    v1::RegisterWorkerResponse resp;
    return stub_->RegisterWorker(&ctx, r, &resp);
  }
  grpc::Status Lease(v1::LeaseTrialResponse* out, int deadline_ms = 2000) {
    grpc::ClientContext ctx;
    ctx.set_deadline(In(deadline_ms));
    v1::LeaseTrialRequest r;
    r.set_worker_id(id_);
    return stub_->LeaseTrial(&ctx, r, out);
  }
  grpc::Status Heartbeat(const v1::Lease& lease) {
    grpc::ClientContext ctx;
    ctx.set_deadline(In(5000));
    v1::HeartbeatRequest hb;
    hb.set_worker_id(id_);
    *hb.mutable_lease() = lease;
    v1::HeartbeatResponse resp;
    return stub_->Heartbeat(&ctx, hb, &resp);
  }
  // Reports, retrying while the controller is away or its store is down (UNAVAILABLE, deadline),
  // up to `attempts` times or until `stop`; the last status.
  grpc::Status Report(const v1::ReportResultRequest& r, int attempts,
                      const std::atomic<bool>* stop = nullptr) {
    grpc::Status s(grpc::StatusCode::CANCELLED, "not sent: stopping");
    for (int i = 0; i < attempts && !(stop && *stop); ++i) {
      grpc::ClientContext ctx;
      ctx.set_deadline(In(2000));
      v1::ReportResultResponse resp;
      s = stub_->ReportResult(&ctx, r, &resp);
      if (s.error_code() != grpc::StatusCode::UNAVAILABLE &&
          s.error_code() != grpc::StatusCode::DEADLINE_EXCEEDED) {
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(30));
    }
    return s;
  }
  v1::ReportResultRequest Result(const v1::Lease& lease, double accuracy) const {
    v1::ReportResultRequest r;
    r.set_worker_id(id_);
    *r.mutable_lease() = lease;
    (*r.mutable_metrics())["accuracy"] = accuracy;
    r.set_hardware_profile("fake");
    return r;
  }

 private:
  std::unique_ptr<v1::WorkerService::Stub> stub_;
  const std::string id_;
};

// Answers from a synthetic table: accuracy is a function of the trial id. 3% of leases it drops
// without a word (a crashed worker: the lease expires), 5% it reports as failed.
class FakeWorker {
 public:
  FakeWorker(std::string id, const std::string& target, const std::string& token,
             InvariantChecker* checker, uint32_t seed)
      : client_(Channel(target, token), std::move(id)), checker_(checker), rng_(seed) {}

  void Run(const std::atomic<bool>& stop, const std::atomic<int>& pace_ms) {
    while (!stop && !client_.Register().ok()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    while (!stop) {
      v1::LeaseTrialResponse resp;
      grpc::Status s = client_.Lease(&resp);
      if (s.error_code() == grpc::StatusCode::FAILED_PRECONDITION) {
        client_.Register();
        continue;
      }
      if (!s.ok() || !resp.has_trial()) {
        std::this_thread::sleep_for(std::chrono::milliseconds(s.ok() ? 20 : 30));
        continue;
      }
      checker_->Granted(resp.lease(), client_.id());
      int roll = std::uniform_int_distribution<int>(0, 99)(rng_);
      if (pace_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(pace_ms));
      if (roll < 3) continue;
      double acc = 50.0 + (resp.lease().trial_id() * 7919 % 5000) / 100.0;
      v1::ReportResultRequest r = client_.Result(resp.lease(), acc);
      if (roll < 8) {
        r.clear_metrics();
        r.set_failed(true);
        r.set_error("synthetic failure");
      }
      if (client_.Report(r, 300, &stop).ok()) {
        checker_->Acknowledged(resp.lease(), r.failed(), acc);
      }
    }
  }

 private:
  WorkerClient client_;
  InvariantChecker* const checker_;
  std::mt19937 rng_;
};

// A lease held by the test itself ("holder"), heartbeating every 500 ms like a real worker, e.g.
// to show that a store outage does not take it away. Registers and leases, retrying for up to
// `wait` (a trial may first have to expire).
struct HeldLease {
  WorkerClient client;
  v1::LeaseTrialResponse lease;
  std::atomic<int> heartbeats_failed{0};
  std::atomic<bool> stop{false};
  std::thread beat;

  explicit HeldLease(std::shared_ptr<grpc::Channel> channel,
                     std::chrono::seconds wait = std::chrono::seconds(30))
      : client(std::move(channel), "holder") {
    auto give_up = std::chrono::steady_clock::now() + wait;
    while (!lease.has_trial() && std::chrono::steady_clock::now() < give_up) {
      if (!client.Register().ok() || !client.Lease(&lease).ok() || !lease.has_trial()) {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
    }
    EXPECT_TRUE(lease.has_trial());
    beat = std::thread([this] {
      while (!stop) {
        if (!client.Heartbeat(lease.lease()).ok()) ++heartbeats_failed;
        for (int i = 0; i < 5 && !stop; ++i) {
          std::this_thread::sleep_for(std::chrono::milliseconds(100));
        }
      }
    });
  }
  ~HeldLease() { StopHeartbeats(); }
  void StopHeartbeats() {
    stop = true;
    if (beat.joinable()) beat.join();
  }
  grpc::Status Report(double acc) {
    StopHeartbeats();
    return client.Report(client.Result(lease.lease(), acc), 200);
  }
  grpc::StatusCode TryLease() {
    v1::LeaseTrialResponse resp;
    return client.Lease(&resp, 20000).error_code();
  }
};

}  // namespace nasforge::testing
