#include "controller/store_writer.h"

#include <chrono>
#include <future>
#include <string>

#include "absl/strings/str_cat.h"
#include "core/log.h"

namespace nasforge {

StoreWriter::StoreWriter(Store* store, ControllerMetrics* metrics, Options options)
    : store_(store), metrics_(metrics), options_(std::move(options)), thread_([this] { Run(); }) {}

StoreWriter::~StoreWriter() { Stop(absl::Now() + absl::Seconds(5)); }

absl::Status StoreWriter::Admit() const {
  absl::MutexLock l(&mu_);
  if (fatal_ || stop_) {
    return absl::UnavailableError(absl::StrCat(
        "the controller is ", fatal_ ? "no longer the owner of its store" : "shutting down",
        "; retry against the controller that serves this store"));
  }
  const absl::Status& down = !last_error_.ok() ? last_error_ : probe_error_;
  if (!down.ok()) {
    return absl::UnavailableError(absl::StrCat("store unavailable (", down.message(),
                                               "); nothing was changed; retry in about 1 s"));
  }
  if (queued_records_ >= options_.max_queued_records) {
    return absl::UnavailableError(absl::StrCat("store write queue full (", queued_records_,
                                               " records pending); nothing was changed; retry "
                                               "in about 1 s"));
  }
  return absl::OkStatus();
}

void StoreWriter::SetProbeResult(const absl::Status& ping) {
  absl::MutexLock l(&mu_);
  probe_error_ = ping;
}

bool StoreWriter::Healthy() const {
  absl::MutexLock l(&mu_);
  return last_error_.ok() && !fatal_;
}

uint64_t StoreWriter::Enqueue(WriteBatch batch) {
  absl::MutexLock l(&mu_);
  uint64_t seq = next_seq_++;
  if (!batch.empty()) {
    queued_records_ += batch.size();
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
  absl::Status st;
  {
    absl::MutexLock l(&mu_);
    if (seq > durable_seq_) {
      if (exited_) {
        st = absl::UnavailableError("the controller stopped before this change was durable");
      } else {
        waiters_.emplace(seq, std::move(done));
        return;
      }
    }
  }
  done(st);
}

absl::Status StoreWriter::Flush(absl::Time deadline) {
  uint64_t target = LastEnqueued();
  absl::MutexLock l(&mu_);
  auto done = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return durable_seq_ >= target || exited_ || fatal_;
  };
  mu_.AwaitWithDeadline(absl::Condition(&done), deadline);
  if (durable_seq_ >= target) return absl::OkStatus();
  return absl::UnavailableError(
      absl::StrCat(queued_records_, " records not yet durable",
                   last_error_.ok() ? "" : absl::StrCat(" (", last_error_.message(), ")")));
}

size_t StoreWriter::Stop(absl::Time deadline) {
  {
    absl::MutexLock l(&mu_);
    if (!stop_) {
      stop_ = true;
      stop_deadline_ = deadline;
    }
  }
  if (thread_.joinable()) {
    // Wait for the thread to end by the deadline; a thread stuck in the database past it is
    // left behind (the process is exiting) rather than hanging shutdown.
    absl::MutexLock l(&mu_);
    auto ended = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return exited_; };
    bool ok = mu_.AwaitWithDeadline(absl::Condition(&ended), deadline + absl::Milliseconds(200));
    mu_.Unlock();
    if (ok) {
      thread_.join();
    } else {
      thread_.detach();
    }
    mu_.Lock();
  }
  absl::MutexLock l(&mu_);
  return queued_records_;
}

void StoreWriter::FailWaiters(const absl::Status& status) {
  std::vector<std::function<void(absl::Status)>> fire;
  {
    absl::MutexLock l(&mu_);
    TakeWaitersLocked(UINT64_MAX, &fire);
  }
  for (auto& f : fire) f(status);
}

void StoreWriter::TakeWaitersLocked(uint64_t upto,
                                    std::vector<std::function<void(absl::Status)>>* fire) {
  auto end = waiters_.upper_bound(upto);
  for (auto it = waiters_.begin(); it != end; ++it) fire->push_back(std::move(it->second));
  waiters_.erase(waiters_.begin(), end);
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
      bool give_up = queue_.empty() || fatal_ || (stop_ && absl::Now() >= stop_deadline_);
      if (give_up) {
        // Stopped: tell whoever still waits that their change is not known to be durable.
        std::vector<std::function<void(absl::Status)>> fire;
        TakeWaitersLocked(UINT64_MAX, &fire);
        exited_ = true;
        if (!queue_.empty()) {
          Log(LogLevel::kError, "store_unflushed",
              {{"records", queued_records_},
               {"error", last_error_.message()},
               {"action", "these changes were never acknowledged; clients retry them"}});
        }
        mu_.Unlock();
        for (auto& f : fire) f(absl::UnavailableError("controller stopping; change not durable"));
        mu_.Lock();
        return;
      }
      // Take everything queued (the group), but leave it in the queue until it is durable.
      for (auto& [seq, b] : queue_) {
        WriteBatch copy = b;
        merged.Append(std::move(copy));
        upto = seq;
        ++batches;
      }
    }
    merged.Compact();
    auto t0 = std::chrono::steady_clock::now();
    absl::Status st = merged.empty() ? absl::OkStatus() : store_->Write(merged);
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::vector<std::function<void(absl::Status)>> fire;
    bool became_fatal = false;
    size_t still_queued = 0;
    {
      absl::MutexLock l(&mu_);
      if (st.ok()) {
        while (!queue_.empty() && queue_.front().first <= upto) {
          queued_records_ -= queue_.front().second.size();
          queue_.pop_front();
        }
        durable_seq_ = std::max(durable_seq_, upto);
        // Sequence numbers of empty batches enqueued after `upto` with nothing ahead are durable.
        if (queue_.empty()) durable_seq_ = next_seq_ - 1;
        if (!last_error_.ok()) {
          Log(LogLevel::kInfo, "store_recovered", {{"after_attempts", failures}});
        }
        last_error_ = absl::OkStatus();
        probe_error_ = absl::OkStatus();
        TakeWaitersLocked(durable_seq_, &fire);
      } else {
        last_error_ = st;
        if (absl::IsAborted(st) && !fatal_) fatal_ = became_fatal = true;
        TakeWaitersLocked(upto, &fire);
      }
      still_queued = queued_records_;
    }
    if (metrics_ != nullptr) {
      metrics_->store_commit_seconds.Observe(secs);
      metrics_->store_queued_records.Set(static_cast<double>(still_queued));
      if (st.ok()) {
        metrics_->store_commits_total.Increment();
        metrics_->store_records_total.Increment(static_cast<double>(merged.size()));
        metrics_->store_commit_records.Observe(static_cast<double>(merged.size()));
      } else {
        metrics_->store_errors_total.Increment();
      }
    }
    for (auto& f : fire) f(st);
    if (became_fatal) {
      Log(LogLevel::kError, "store_fatal",
          {{"error", st.message()}, {"action", "stopping: another controller owns the store"}});
      if (options_.on_fatal) options_.on_fatal(st);
      continue;  // the loop sees fatal_ and exits
    }
    if (st.ok()) {
      failures = 0;
    } else {
      ++failures;
      Log(LogLevel::kError, "store_write_failed",
          {{"error", st.message()},
           {"batches", batches},
           {"attempt", failures},
           {"action", "retrying with backoff; calls answer UNAVAILABLE until it succeeds"}});
      absl::MutexLock l(&mu_);
      const bool was_stopping = stop_;
      auto woken = [this, was_stopping]()
                       ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stop_ && !was_stopping; };
      absl::Duration backoff = absl::Milliseconds(std::min(2000, 50 << std::min(failures, 6)));
      if (stop_)
        backoff = std::min(backoff, std::max(absl::ZeroDuration(), stop_deadline_ - absl::Now()));
      mu_.AwaitWithTimeout(absl::Condition(&woken), backoff);
    }
  }
}

}  // namespace nasforge
