#include "controller/store_writer.h"

#include <chrono>
#include <future>

#include "core/log.h"

namespace nasforge {

StoreWriter::StoreWriter(Store* store, ControllerMetrics* metrics)
    : store_(store), metrics_(metrics), thread_([this] { Run(); }) {}

StoreWriter::~StoreWriter() {
  {
    absl::MutexLock l(&mu_);
    stop_ = true;
  }
  thread_.join();
}

uint64_t StoreWriter::Enqueue(WriteBatch batch) {
  absl::MutexLock l(&mu_);
  uint64_t seq = next_seq_++;
  if (!batch.empty()) {
    queue_.emplace_back(seq, std::move(batch));
  } else if (queue_.empty()) {
    durable_seq_ = seq;  // nothing to write and nothing ahead of it
  } else {
    queue_.emplace_back(seq, WriteBatch{});
  }
  return seq;
}

uint64_t StoreWriter::LastEnqueued() const {
  absl::MutexLock l(&mu_);
  return next_seq_ - 1;
}

void StoreWriter::WhenDurable(uint64_t seq, std::function<void(absl::Status)> done) {
  {
    absl::MutexLock l(&mu_);
    if (seq > durable_seq_) {
      waiters_.emplace(seq, std::move(done));
      return;
    }
  }
  done(absl::OkStatus());
}

absl::Status StoreWriter::Flush() {
  std::promise<absl::Status> p;
  auto f = p.get_future();
  WhenDurable(LastEnqueued(), [&p](absl::Status s) { p.set_value(std::move(s)); });
  absl::Status s = f.get();
  // A failed round reports its error, but the batch stays queued: wait for the retry.
  while (!s.ok()) {
    std::promise<absl::Status> p2;
    auto f2 = p2.get_future();
    WhenDurable(LastEnqueued(), [&p2](absl::Status st) { p2.set_value(std::move(st)); });
    s = f2.get();
    if (!s.ok()) {
      absl::MutexLock l(&mu_);
      if (stop_) return s;
    }
  }
  return s;
}

void StoreWriter::Run() {
  int failures = 0;
  for (;;) {
    WriteBatch merged;
    uint64_t upto = 0;
    size_t batches = 0;
    {
      absl::MutexLock l(&mu_);
      auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stop_ || !queue_.empty(); };
      mu_.Await(absl::Condition(&ready));
      if (queue_.empty()) return;  // stop_ and drained
      // Take everything queued (the group), but leave it in the queue until it is durable.
      for (auto& [seq, b] : queue_) {
        WriteBatch copy = b;
        merged.Append(std::move(copy));
        upto = seq;
        ++batches;
      }
    }
    auto t0 = std::chrono::steady_clock::now();
    absl::Status st = merged.empty() ? absl::OkStatus() : store_->Write(merged);
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::vector<std::function<void(absl::Status)>> fire;
    {
      absl::MutexLock l(&mu_);
      if (st.ok()) {
        while (!queue_.empty() && queue_.front().first <= upto) queue_.pop_front();
        durable_seq_ = std::max(durable_seq_, upto);
        // Sequence numbers of empty batches enqueued after `upto` with nothing ahead are durable.
        if (queue_.empty()) durable_seq_ = next_seq_ - 1;
        auto end = waiters_.upper_bound(durable_seq_);
        for (auto it = waiters_.begin(); it != end; ++it) fire.push_back(std::move(it->second));
        waiters_.erase(waiters_.begin(), end);
      } else {
        auto end = waiters_.upper_bound(upto);
        for (auto it = waiters_.begin(); it != end; ++it) fire.push_back(std::move(it->second));
        waiters_.erase(waiters_.begin(), end);
      }
    }
    if (metrics_ != nullptr) {
      metrics_->store_commit_seconds.Observe(secs);
      if (st.ok()) {
        metrics_->store_commits_total.Increment();
        metrics_->store_records_total.Increment(static_cast<double>(merged.size()));
      } else {
        metrics_->store_errors_total.Increment();
      }
    }
    for (auto& f : fire) f(st);
    if (st.ok()) {
      failures = 0;
    } else {
      ++failures;
      Log(LogLevel::kError, "store_write_failed",
          {{"error", st.message()},
           {"batches", batches},
           {"attempt", failures},
           {"action", "retrying; check the database"}});
      absl::MutexLock l(&mu_);
      bool stopping = stop_;
      if (stopping && failures >= 5) return;  // give up at shutdown rather than hang
      auto woken = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stop_; };
      mu_.AwaitWithTimeout(absl::Condition(&woken),
                           absl::Milliseconds(std::min(5000, 100 << std::min(failures, 6))));
    }
  }
}

}  // namespace nasforge
