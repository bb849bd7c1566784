// A minimal worker for the network-partition test, run inside its own network namespace
// (ip netns exec): registers, leases one trial, prints "leased JOB TRIAL EPOCH", heartbeats until
// a line "report" arrives on stdin, then reports a result for that lease and prints
// "report CODE" (the gRPC status code), and exits. It runs as its own process because a network
// namespace applies to the sockets of a whole process, gRPC's threads included.
#include <grpcpp/grpcpp.h>

#include <atomic>
#include <cstdio>
#include <iostream>
#include <string>
#include <thread>

#include "client/channel.h"
#include "nasforge/v1/nasforge.grpc.pb.h"

namespace v1 = nasforge::v1;

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: fault_worker CONTROLLER WORKER_ID\n");
    return 2;
  }
  nasforge::ChannelOptions o;
  o.target = argv[1];
  o.token = nasforge::LoadToken("").value();  // $NASFORGE_TOKEN
  o.insecure = true;                          // the test's own namespace host
  auto stub = v1::WorkerService::NewStub(nasforge::OpenChannel(std::move(o)).value());
  auto deadline = [] { return std::chrono::system_clock::now() + std::chrono::seconds(2); };
  v1::RegisterWorkerRequest reg;
  reg.set_worker_id(argv[2]);
  reg.mutable_hardware()->set_name("partitioned");
  v1::RegisterWorkerResponse reg_resp;
  {
    grpc::ClientContext ctx;
    ctx.set_deadline(deadline());
    ctx.set_wait_for_ready(true);
    if (!stub->RegisterWorker(&ctx, reg, &reg_resp).ok()) return 3;
  }
  v1::LeaseTrialResponse lease;
  for (int i = 0; i < 200 && !lease.has_trial(); ++i) {
    grpc::ClientContext ctx;
    ctx.set_deadline(deadline());
    v1::LeaseTrialRequest r;
    r.set_worker_id(argv[2]);
    if (!stub->LeaseTrial(&ctx, r, &lease).ok() || !lease.has_trial()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }
  if (!lease.has_trial()) return 4;
  std::printf("leased %s %lld %llu\n", lease.lease().job_id().c_str(),
              static_cast<long long>(lease.lease().trial_id()),
              static_cast<unsigned long long>(lease.lease().epoch()));
  std::fflush(stdout);
  std::atomic<bool> reporting{false};
  std::thread heartbeats([&] {
    while (!reporting) {
      grpc::ClientContext ctx;
      ctx.set_deadline(deadline());
      v1::HeartbeatRequest hb;
      hb.set_worker_id(argv[2]);
      *hb.mutable_lease() = lease.lease();
      v1::HeartbeatResponse resp;
      (void)stub->Heartbeat(&ctx, hb, &resp);  // fails while cut off; that is the point
      std::this_thread::sleep_for(std::chrono::milliseconds(500));
    }
  });
  std::string line;
  while (std::getline(std::cin, line) && line != "report") {
  }
  reporting = true;
  heartbeats.join();
  v1::ReportResultRequest rr;
  rr.set_worker_id(argv[2]);
  *rr.mutable_lease() = lease.lease();
  (*rr.mutable_metrics())["accuracy"] = 99.99;
  rr.set_hardware_profile("partitioned");
  grpc::Status s;
  for (int i = 0; i < 50; ++i) {  // the link may take a moment to carry traffic again
    grpc::ClientContext ctx;
    ctx.set_deadline(deadline());
    ctx.set_wait_for_ready(true);
    v1::ReportResultResponse resp;
    s = stub->ReportResult(&ctx, rr, &resp);
    if (s.error_code() != grpc::StatusCode::UNAVAILABLE &&
        s.error_code() != grpc::StatusCode::DEADLINE_EXCEEDED) {
      break;
    }
  }
  std::printf("report %d %s\n", static_cast<int>(s.error_code()), s.error_message().c_str());
  std::fflush(stdout);
  return 0;
}
