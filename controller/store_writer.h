// Group commit: callers enqueue write batches (in decision order: JobManager enqueues under the
// lock it decided under) and get a sequence number; one background thread drains everything
// queued into a single transaction, keeping only the newest version of each row. RPC handlers
// finish their call from WhenDurable's callback, so no gRPC thread blocks on the database.
//
// A failed transaction is retried with backoff and never dropped (rows are versioned snapshots,
// so a retry or a late duplicate can only move a row forward); waiters of that round are told
// the error so clients can retry. While the store fails, Admit() refuses new changes with
// UNAVAILABLE, and the queue is bounded by Options::max_queued_records.
//
// Thread-safe.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <string>
#include <thread>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "controller/metrics.h"
#include "controller/store.h"

namespace nasforge {

class StoreWriter {
 public:
  struct Options {
    // Records queued but not yet durable past which Admit() answers UNAVAILABLE (default 100k).
    size_t max_queued_records = 100'000;
    // Called once, on the writer thread, when the store answers ABORTED (ownership lost): the
    // process must stop serving. Default: none (the writer stops writing).
    std::function<void(const absl::Status&)> on_fatal;
  };

  // `store` and `metrics` (nullable) must outlive the writer.
  StoreWriter(Store* store, ControllerMetrics* metrics) : StoreWriter(store, metrics, Options()) {}
  StoreWriter(Store* store, ControllerMetrics* metrics, Options options);
  ~StoreWriter();  // Stop(now + 5 s)
  StoreWriter(const StoreWriter&) = delete;
  StoreWriter& operator=(const StoreWriter&) = delete;

  // OK when a new change may be made; UNAVAILABLE (with the reason and a retry hint) while the
  // store is failing or the queue is full. Callers check before changing state.
  absl::Status Admit() const;
  // True until a transaction fails; true again after one succeeds.
  bool Healthy() const;
  // The latest health probe of the store (a ping): while it fails, Admit() refuses too, so a
  // controller that says NOT_SERVING never accepts a change. A successful commit clears it.
  void SetProbeResult(const absl::Status& ping);

  // Queues `batch`; returns its sequence number (monotonic, from 1).
  uint64_t Enqueue(WriteBatch batch);
  // Highest sequence number handed out so far.
  uint64_t LastEnqueued() const;
  // Calls `done` (on the writer thread, or inline if already durable) once every batch up to
  // `seq` is committed, or with the error of the transaction that failed.
  void WhenDurable(uint64_t seq, std::function<void(absl::Status)> done);
  // Blocks until everything enqueued so far is durable or `deadline` passes.
  absl::Status Flush(absl::Time deadline = absl::InfiniteFuture());
  // Stops the writer: keeps committing until the queue is empty or `deadline`, then ends.
  // Returns the number of records that were not made durable (0 on a clean stop). Waiters still
  // pending are told UNAVAILABLE. Idempotent.
  size_t Stop(absl::Time deadline);
  // Tells every caller still waiting in WhenDurable `status` now (their changes stay queued).
  // For shutdown: cancelled calls must finish even while a write hangs in the database.
  void FailWaiters(const absl::Status& status);

 private:
  void Run();
  // Moves the waiters for sequence numbers <= `upto` into `fire` (called after unlocking).
  void TakeWaitersLocked(uint64_t upto, std::vector<std::function<void(absl::Status)>>* fire)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  Store* const store_;
  ControllerMetrics* const metrics_;
  const Options options_;
  mutable absl::Mutex mu_;
  std::deque<std::pair<uint64_t, WriteBatch>> queue_ ABSL_GUARDED_BY(mu_);
  size_t queued_records_ ABSL_GUARDED_BY(mu_) = 0;
  std::multimap<uint64_t, std::function<void(absl::Status)>> waiters_ ABSL_GUARDED_BY(mu_);
  uint64_t next_seq_ ABSL_GUARDED_BY(mu_) = 1;
  uint64_t durable_seq_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Status last_error_ ABSL_GUARDED_BY(mu_);
  absl::Status probe_error_ ABSL_GUARDED_BY(mu_);
  bool fatal_ ABSL_GUARDED_BY(mu_) = false;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  bool exited_ ABSL_GUARDED_BY(mu_) = false;
  absl::Time stop_deadline_ ABSL_GUARDED_BY(mu_) = absl::InfiniteFuture();
  std::thread thread_;
};

}  // namespace nasforge
