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
// The counts of `trials` by state; rejected_by_cost is kept from `previous`.
v1::JobCounts CountTrials(const std::vector<v1::Trial>& trials, const v1::JobCounts& previous);

}  // namespace nasforge
