// A job's finished trials' metrics by column (one array per metric name, indexed by trial id),
// so that a QueryPareto over a million trials reads arrays instead of a million protobuf maps.
// Filled when a trial reaches SUCCEEDED or STOPPED (its metrics are final then) and at recovery.
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <unordered_map>
#include <vector>

#include "nasforge/v1/nasforge.pb.h"

namespace nasforge {

class MetricColumns {
 public:
  // Records `t`'s metrics and state (SUCCEEDED or STOPPED; others are ignored).
  void Add(const v1::Trial& t);
  // The state recorded for trial `id` (TRIAL_STATE_UNSPECIFIED: not finished with metrics).
  v1::TrialState State(int64_t id) const {
    return id < static_cast<int64_t>(states_.size()) ? static_cast<v1::TrialState>(states_[id])
                                                     : v1::TRIAL_STATE_UNSPECIFIED;
  }
  size_t size() const { return states_.size(); }
  // The column of `metric`, or nullptr when no trial has it. NaN where a trial lacks it.
  const std::vector<double>* Column(const std::string& metric) const {
    auto it = columns_.find(metric);
    return it == columns_.end() ? nullptr : &it->second;
  }

 private:
  std::vector<uint8_t> states_;
  std::unordered_map<std::string, std::vector<double>> columns_;
};

}  // namespace nasforge
