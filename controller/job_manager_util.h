// JobManager's own helpers, shared by its three files (job_manager.cc: construction, recovery and
// the users' calls; job_manager_workers.cc: the worker protocol and lease expiry;
// job_manager_internal.cc: bookkeeping). Not for use outside JobManager.
#pragma once

#include <google/protobuf/util/time_util.h>

#include <cstdint>

#include "absl/time/time.h"
#include "nasforge/v1/nasforge.pb.h"

namespace nasforge::job_manager_internal {

// Consecutive inadmissible samples (duplicates or over a cost bound) before a job's space counts
// as exhausted.
inline constexpr int kMaxSampleMisses = 2000;

inline google::protobuf::Timestamp ToProto(absl::Time t) {
  return google::protobuf::util::TimeUtil::NanosecondsToTimestamp(absl::ToUnixNanos(t));
}
inline absl::Time FromProto(const google::protobuf::Timestamp& t) {
  return absl::FromUnixNanos(google::protobuf::util::TimeUtil::TimestampToNanoseconds(t));
}

// Admission by memory: a worker that declared its memory gets only trials whose estimated
// training memory fits in it (workers that declare none take anything).
inline bool Fits(const v1::Trial& t, int64_t worker_memory) {
  if (worker_memory <= 0) return true;
  auto it = t.metrics().find("train_memory_bytes");
  return it == t.metrics().end() || it->second <= static_cast<double>(worker_memory);
}

// Admission by dataset: a worker that named its datasets trains only those; one that named none
// trains every built-in dataset, but not "external" (the user's own training code trains those).
inline bool TrainsDataset(const v1::Worker& w, const std::string& dataset) {
  if (w.datasets().empty()) return dataset != "external";
  for (const std::string& d : w.datasets()) {
    if (d == dataset) return true;
  }
  return false;
}

// A variant trial only to a worker that registered its compression kind; any other trial to all.
bool MakesVariant(const v1::Worker& w, const v1::Trial& t);

}  // namespace nasforge::job_manager_internal
