// Trial and job states in one place: which are terminal, their short labels, and the per-state
// counts of a job (JobCounts, whose field numbers are the TrialState values, so counting goes
// through the enum instead of parallel lists of names).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "nasforge/v1/nasforge.pb.h"

namespace nasforge {

bool TrialTerminal(v1::TrialState s);
bool JobTerminal(v1::JobState s);

// The states a trial can be in (TRIAL_QUEUED .. TRIAL_CANCELLED), in enum order.
const std::vector<v1::TrialState>& TrialStates();
// "queued", "running", ... (the enum name, lowercase, without TRIAL_); metric labels and tables.
std::string TrialStateLabel(v1::TrialState s);

// The JobCounts entry of state `s`.
int32_t CountOf(const v1::JobCounts& c, v1::TrialState s);
// Adds `delta` to the count of state `s`.
void AddToCount(v1::JobCounts* c, v1::TrialState s, int32_t delta);
// Adds `from`'s per-state counts (and rejected_by_cost) to `to`.
void AddCounts(const v1::JobCounts& from, v1::JobCounts* to);
// JobCounts from `n[state]` (trials per TrialState value); rejected_by_cost from `previous`.
v1::JobCounts CountStates(const std::vector<int32_t>& n, const v1::JobCounts& previous);
// The counts of `trials` (any container of v1::Trial) by state; rejected_by_cost is kept from
// `previous`.
template <typename Trials>
v1::JobCounts CountTrials(const Trials& trials, const v1::JobCounts& previous) {
  std::vector<int32_t> n(v1::TrialState_MAX + 1, 0);
  for (const v1::Trial& t : trials) {
    if (t.state() >= 0 && t.state() <= v1::TrialState_MAX) ++n[t.state()];
  }
  return CountStates(n, previous);
}

}  // namespace nasforge
