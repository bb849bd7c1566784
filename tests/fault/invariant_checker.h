// Records every lease grant and every acknowledged result seen through the public API, then
// checks the exactly-once invariants against the final state (from the API and from the store):
//   - each (job, trial, epoch) granted at most once;
//   - a trial's epochs strictly increase in the order grants were received;
//   - every acknowledged success is in the final state exactly as reported (same epoch, same
//     accuracy), and the trial was never leased again after it;
//   - the job's counts equal the tally of its trials' states.
// Thread-safe.
#pragma once

#include <map>
#include <mutex>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "absl/strings/str_cat.h"
#include "nasforge/v1/nasforge.pb.h"

namespace nasforge::testing {

class InvariantChecker {
 public:
  void Granted(const v1::Lease& l, const std::string& worker) {
    std::lock_guard<std::mutex> g(mu_);
    grants_.push_back({l.job_id(), l.trial_id(), l.epoch(), worker});
  }
  void Acknowledged(const v1::Lease& l, bool failed, double accuracy) {
    std::lock_guard<std::mutex> g(mu_);
    acks_.push_back({l.job_id(), l.trial_id(), l.epoch(), failed, accuracy});
  }
  size_t grants() const {
    std::lock_guard<std::mutex> g(mu_);
    return grants_.size();
  }
  size_t acks() const {
    std::lock_guard<std::mutex> g(mu_);
    return acks_.size();
  }

  // Violations found against the final `jobs` and their `trials` (job id -> trials by id).
  std::vector<std::string> Check(
      const std::vector<v1::Job>& jobs,
      const std::map<std::string, std::vector<v1::Trial>>& trials) const {
    std::lock_guard<std::mutex> g(mu_);
    std::vector<std::string> bad;
    std::map<std::tuple<std::string, int64_t, uint64_t>, int> per_epoch;
    std::map<std::pair<std::string, int64_t>, uint64_t> last_epoch;
    std::map<std::pair<std::string, int64_t>, uint64_t> max_grant;
    for (const auto& gr : grants_) {
      if (++per_epoch[{gr.job, gr.trial, gr.epoch}] == 2) {
        bad.push_back(
            absl::StrCat("epoch granted twice: ", gr.job, "/", gr.trial, " epoch ", gr.epoch));
      }
      auto key = std::make_pair(gr.job, gr.trial);
      auto it = last_epoch.find(key);
      if (it != last_epoch.end() && gr.epoch <= it->second) {
        bad.push_back(absl::StrCat("epochs not increasing: ", gr.job, "/", gr.trial, " got ",
                                   gr.epoch, " after ", it->second));
      }
      last_epoch[key] = std::max(last_epoch[key], gr.epoch);
      max_grant[key] = std::max(max_grant[key], gr.epoch);
    }
    std::set<std::pair<std::string, int64_t>> succeeded;
    for (const auto& a : acks_) {
      auto tj = trials.find(a.job);
      if (tj == trials.end() || a.trial >= static_cast<int64_t>(tj->second.size())) {
        bad.push_back(absl::StrCat("acknowledged result lost: no trial ", a.job, "/", a.trial));
        continue;
      }
      const v1::Trial& t = tj->second[a.trial];
      if (!a.failed) {
        if (!succeeded.insert({a.job, a.trial}).second) {
          // The same lease acknowledged again is a retry; anything else is a double count.
          bool same = false;
          for (const auto& b : acks_) {
            same |= &b != &a && b.job == a.job && b.trial == a.trial && b.epoch == a.epoch;
          }
          if (!same) bad.push_back(absl::StrCat("two successes: ", a.job, "/", a.trial));
        }
        if (t.state() != v1::TRIAL_SUCCEEDED || t.lease_epoch() != a.epoch ||
            !t.metrics().count("accuracy") || t.metrics().at("accuracy") != a.accuracy) {
          bad.push_back(absl::StrCat("acknowledged success not in the final state: ", a.job, "/",
                                     a.trial, " epoch ", a.epoch, " -> state ",
                                     v1::TrialState_Name(t.state()), " epoch ", t.lease_epoch()));
        }
        if (max_grant[{a.job, a.trial}] > a.epoch) {
          bad.push_back(absl::StrCat("leased again after success: ", a.job, "/", a.trial));
        }
      } else if (t.state() == v1::TRIAL_RUNNING && t.lease_epoch() == a.epoch) {
        bad.push_back(absl::StrCat("acknowledged failure undone: ", a.job, "/", a.trial));
      }
    }
    for (const auto& j : jobs) {
      auto tj = trials.find(j.id());
      if (tj == trials.end()) continue;
      int n[8] = {0};
      for (const auto& t : tj->second) ++n[t.state()];
      const auto& c = j.counts();
      if (c.queued() != n[v1::TRIAL_QUEUED] || c.running() != n[v1::TRIAL_RUNNING] ||
          c.succeeded() != n[v1::TRIAL_SUCCEEDED] || c.stopped() != n[v1::TRIAL_STOPPED] ||
          c.failed() != n[v1::TRIAL_FAILED] || c.cancelled() != n[v1::TRIAL_CANCELLED]) {
        bad.push_back(absl::StrCat("job ", j.id(), " counts ", c.ShortDebugString(),
                                   " differ from its trials"));
      }
    }
    return bad;
  }

 private:
  struct Grant {
    std::string job;
    int64_t trial;
    uint64_t epoch;
    std::string worker;
  };
  struct Ack {
    std::string job;
    int64_t trial;
    uint64_t epoch;
    bool failed;
    double accuracy;
  };
  mutable std::mutex mu_;
  std::vector<Grant> grants_;
  std::vector<Ack> acks_;
};

}  // namespace nasforge::testing
