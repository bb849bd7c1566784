// For tests that run a job over gRPC: follows WatchJob until the job ends (the stream closes by
// itself then) or `seconds` pass; the job as last seen, and whether the stream ended cleanly.
#pragma once

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <string>

#include "nasforge/v1/nasforge.grpc.pb.h"

namespace nasforge::testing {

struct Watched {
  v1::Job job;
  grpc::Status status;
};

inline Watched WatchUntilEnd(v1::JobService::Stub& jobs, const std::string& job_id, int seconds) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(seconds));
  v1::WatchJobRequest w;
  w.set_job_id(job_id);
  auto reader = jobs.WatchJob(&ctx, w);
  Watched out;
  v1::JobEvent e;
  while (reader->Read(&e)) out.job = e.job();
  out.status = reader->Finish();
  return out;
}

}  // namespace nasforge::testing
