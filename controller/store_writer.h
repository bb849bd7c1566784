// Group commit: callers enqueue write batches and get a sequence number; one background thread
// drains everything queued into a single transaction. RPC handlers finish their call from
// WhenDurable's callback, so no gRPC thread blocks on the database.
//
// A failed transaction is retried (upserts are idempotent) and never dropped; waiters of that
// round are told the error so clients can retry.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <thread>

#include "absl/synchronization/mutex.h"
#include "controller/metrics.h"
#include "controller/store.h"

namespace nasforge {

class StoreWriter {
 public:
  // `store` and `metrics` (nullable) must outlive the writer.
  StoreWriter(Store* store, ControllerMetrics* metrics);
  ~StoreWriter();  // flushes what is queued, then stops
  StoreWriter(const StoreWriter&) = delete;
  StoreWriter& operator=(const StoreWriter&) = delete;

  // Queues `batch`; returns its sequence number (monotonic, from 1).
  uint64_t Enqueue(WriteBatch batch);
  // Highest sequence number handed out so far.
  uint64_t LastEnqueued() const;
  // Calls `done` (on the writer thread, or inline if already durable) once every batch up to
  // `seq` is committed, or with the error of the transaction that failed.
  void WhenDurable(uint64_t seq, std::function<void(absl::Status)> done);
  // Blocks until everything enqueued so far is durable (for shutdown and tests).
  absl::Status Flush();

 private:
  void Run();

  Store* const store_;
  ControllerMetrics* const metrics_;
  mutable absl::Mutex mu_;
  std::deque<std::pair<uint64_t, WriteBatch>> queue_ ABSL_GUARDED_BY(mu_);
  std::multimap<uint64_t, std::function<void(absl::Status)>> waiters_ ABSL_GUARDED_BY(mu_);
  uint64_t next_seq_ ABSL_GUARDED_BY(mu_) = 1;
  uint64_t durable_seq_ ABSL_GUARDED_BY(mu_) = 0;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace nasforge
