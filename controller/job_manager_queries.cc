// JobManager: the users' reads (get and list jobs and candidates, Pareto queries, watch), under
// the reader lock.
#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "controller/job_manager.h"
#include "controller/job_manager_util.h"
#include "core/hardware_targets.h"
#include "core/log.h"
#include "core/pareto.h"
#include "core/status.h"
#include "core/trial_state.h"

namespace nasforge {

using namespace job_manager_internal;  // NOLINT: this class's own helpers

namespace {

// The job's target a query's hardware_profile names: a target's name, or the profile of exactly
// one target; "" when it names none (then it filters by the training profile).
absl::StatusOr<std::string> QueryTarget(const v1::JobSpec& spec, const std::string& profile) {
  if (profile.empty()) return std::string();
  std::vector<std::string> by_profile;
  for (const auto& t : spec.hardware_targets()) {
    if (t.name() == profile) return t.name();
    if (t.profile() == profile) by_profile.push_back(t.name());
  }
  if (by_profile.size() > 1) {
    return FieldError("hardware_profile",
                      absl::StrCat("profile '", profile, "' has several targets in this job (",
                                   absl::StrJoin(by_profile, ", "), "); name one of them"));
  }
  return by_profile.empty() ? std::string() : by_profile[0];
}

absl::StatusOr<size_t> ParsePageToken(absl::string_view token, absl::string_view field) {
  if (token.empty()) return 0;
  uint64_t v;
  if (!absl::SimpleAtoi(token, &v)) return FieldError(field, "is not a token this server issued");
  return static_cast<size_t>(v);
}

}  // namespace

absl::StatusOr<v1::Job> JobManager::GetJob(absl::string_view job_id,
                                           const Principal& caller) const {
  absl::ReaderMutexLock l(&mu_);
  NF_ASSIGN_OR_RETURN(const JobState* js, FindVisible(job_id, caller));
  return js->job;
}

absl::StatusOr<v1::ListJobsResponse> JobManager::ListJobs(const v1::ListJobsRequest& req,
                                                          const Principal& caller) const {
  if (req.page_size() < 0) return FieldError("page_size", "must be >= 0");
  size_t size = req.page_size() == 0 ? 50 : std::min(req.page_size(), 500);
  NF_ASSIGN_OR_RETURN(size_t start, ParsePageToken(req.page_token(), "page_token"));
  for (int i = 0; i < req.states_size(); ++i) {
    if (!v1::JobState_IsValid(req.states(i)) || req.states(i) == v1::JOB_STATE_UNSPECIFIED) {
      return FieldError(absl::StrCat("states[", i, "]"),
                        absl::StrCat(req.states(i), " is not a job state"));
    }
  }
  const std::set<int> states(req.states().begin(), req.states().end());
  const std::string name = absl::AsciiStrToLower(req.name());
  auto listed = [&](const v1::Job& job) {
    if (!states.empty() && !states.count(job.state())) return false;
    if (!req.owner().empty() && job.owner() != req.owner()) return false;
    if (!name.empty() && !absl::StrContains(absl::AsciiStrToLower(job.spec().name()), name)) {
      return false;
    }
    for (const auto& [k, v] : req.labels()) {
      auto it = job.spec().labels().find(k);
      if (it == job.spec().labels().end() || (!v.empty() && it->second != v)) return false;
    }
    return true;
  };
  absl::ReaderMutexLock l(&mu_);
  v1::ListJobsResponse resp;
  // Newest first; a non-admin sees only their own jobs. The token is where the next page starts.
  size_t i = start;
  for (; i < job_order_.size() && resp.jobs_size() < static_cast<int>(size); ++i) {
    const v1::Job& job = jobs_.at(job_order_[job_order_.size() - 1 - i])->job;
    if ((caller.admin() || job.owner() == caller.name) && listed(job)) *resp.add_jobs() = job;
  }
  if (i < job_order_.size()) resp.set_next_page_token(absl::StrCat(i));
  return resp;
}

absl::StatusOr<v1::Trial> JobManager::GetCandidate(absl::string_view job_id, int64_t trial_id,
                                                   const Principal& caller) const {
  absl::ReaderMutexLock l(&mu_);
  NF_ASSIGN_OR_RETURN(const JobState* js, FindVisible(job_id, caller));
  if (trial_id < 0 || trial_id >= static_cast<int64_t>(js->trials.size())) {
    return absl::NotFoundError(absl::StrCat("trial_id: job ", job_id, " has no trial ", trial_id,
                                            " (it has ", js->trials.size(), ")"));
  }
  return js->trials[trial_id];
}

absl::StatusOr<v1::ListCandidatesResponse> JobManager::ListCandidates(
    const v1::ListCandidatesRequest& req, const Principal& caller) const {
  if (req.page_size() < 0) return FieldError("page_size", "must be >= 0");
  size_t size = req.page_size() == 0 ? 100 : std::min(req.page_size(), 1000);
  NF_ASSIGN_OR_RETURN(size_t start, ParsePageToken(req.page_token(), "page_token"));
  std::set<int> states(req.states().begin(), req.states().end());
  absl::ReaderMutexLock l(&mu_);
  NF_ASSIGN_OR_RETURN(const JobState* js, FindVisible(req.job_id(), caller));
  v1::ListCandidatesResponse resp;
  size_t i = start;
  for (; i < js->trials.size() && resp.trials_size() < static_cast<int>(size); ++i) {
    if (!states.empty() && !states.count(js->trials[i].state())) continue;
    *resp.add_trials() = js->trials[i];
  }
  if (i < js->trials.size()) resp.set_next_page_token(absl::StrCat(i));
  return resp;
}

absl::StatusOr<v1::QueryParetoResponse> JobManager::QueryPareto(const v1::QueryParetoRequest& req,
                                                                const Principal& caller) const {
  NF_RETURN_IF_ERROR(ValidateObjectives(req.objectives(), "objectives"));
  NF_RETURN_IF_ERROR(ValidateConstraints(req.constraints(), "constraints"));
  if (req.limit() < 0) return FieldError("limit", "must be >= 0");
  const std::string& variants = req.variants();
  if (!variants.empty() && variants != "exclude" && variants != "include" && variants != "only") {
    return FieldError("variants", absl::StrCat("'", variants, "': one of exclude, include, only"));
  }
  const bool with_variants = variants == "include" || variants == "only";
  absl::ReaderMutexLock l(&mu_);
  NF_ASSIGN_OR_RETURN(const JobState* js, FindVisible(req.job_id(), caller));
  std::vector<v1::Objective> objectives(req.objectives().begin(), req.objectives().end());
  if (objectives.empty()) {
    objectives.assign(js->job.spec().objectives().begin(), js->job.spec().objectives().end());
  }
  std::vector<v1::Constraint> constraints(req.constraints().begin(), req.constraints().end());
  // A hardware profile that names one of the job's targets (by name, or its only target of
  // that profile) ranks by the latency measured there: latency_ms means latency_ms@TARGET, and
  // candidates are those measured there. Any other profile keeps its first meaning: candidates
  // trained on workers of that profile.
  NF_ASSIGN_OR_RETURN(const std::string target,
                      QueryTarget(js->job.spec(), req.hardware_profile()));
  for (auto& o : objectives) o.set_metric(ResolveForTarget(o.metric(), target));
  for (auto& c : constraints) c.set_metric(ResolveForTarget(c.metric(), target));
  for (size_t i = 0; i < objectives.size(); ++i) {
    std::string base, named;
    if (SplitTargetMetric(objectives[i].metric(), &base, &named)) {
      NF_RETURN_IF_ERROR(
          CheckTargetExists(js->job.spec(), named, absl::StrCat("objectives[", i, "].metric")));
    }
  }
  for (size_t i = 0; i < constraints.size(); ++i) {
    std::string base, named;
    if (SplitTargetMetric(constraints[i].metric(), &base, &named)) {
      NF_RETURN_IF_ERROR(
          CheckTargetExists(js->job.spec(), named, absl::StrCat("constraints[", i, "].metric")));
    }
  }
  if (!target.empty()) {  // measured there: a bound that every measured candidate meets
    v1::Constraint measured;
    measured.set_metric(TargetMetric("latency_ms", target));
    measured.set_lower(0);
    constraints.push_back(measured);
  }
  std::vector<int64_t> ids;  // the candidates, by trial id
  // The job's own front, as it is kept: only its members can be on the answer's front (same
  // selection below, same order), so the scan of every trial is skipped.
  const bool kept = req.objectives().empty() && constraints.empty() &&
                    req.hardware_profile().empty() && !req.include_stopped() && !with_variants;
  const MetricColumns& columns = js->columns;
  if (kept) {
    if (js->front != nullptr) ids = js->front->Ids();
  } else {
    ids.reserve(columns.size());
    for (int64_t id = 0; id < static_cast<int64_t>(columns.size()); ++id) {
      const v1::TrialState s = columns.State(id);
      if (s != v1::TRIAL_SUCCEEDED && !(s == v1::TRIAL_STOPPED && req.include_stopped())) continue;
      const bool variant = js->trials[id].has_variant();
      if (variant ? !with_variants : variants == "only") continue;
      if (target.empty() && !req.hardware_profile().empty() &&
          js->trials[id].hardware_profile() != req.hardware_profile()) {
        continue;
      }
      ids.push_back(id);
    }
  }
  // Each metric the query names, resolved to its column once (nullptr: no trial has it).
  std::vector<std::pair<const std::string*, const std::vector<double>*>> named;
  for (const auto& o : objectives) named.emplace_back(&o.metric(), columns.Column(o.metric()));
  for (const auto& c : constraints) named.emplace_back(&c.metric(), columns.Column(c.metric()));
  size_t considered = 0;
  std::vector<size_t> front = SelectPareto(
      ids.size(),
      [&](size_t i, const std::string& name, double* value) {
        for (const auto& [n, column] : named) {
          if (n != &name && *n != name) continue;
          if (column == nullptr || ids[i] >= static_cast<int64_t>(column->size())) return false;
          *value = (*column)[ids[i]];
          return !std::isnan(*value);
        }
        return false;
      },
      objectives, constraints, &considered);
  v1::QueryParetoResponse resp;
  resp.set_considered(static_cast<int>(kept ? js->front_considered : considered));
  for (size_t k : front) {
    if (req.limit() > 0 && resp.trials_size() >= req.limit()) break;
    *resp.add_trials() = js->trials[ids[k]];
  }
  return resp;
}

absl::StatusOr<uint64_t> JobManager::Subscribe(absl::string_view job_id,
                                               std::function<void(const v1::JobEvent&)> fn,
                                               const Principal& caller) {
  v1::JobEvent snapshot;
  uint64_t handle;
  {
    absl::ReaderMutexLock l(&mu_);
    NF_ASSIGN_OR_RETURN(const JobState* js, FindVisible(job_id, caller));
    snapshot = Event(*js, nullptr, "snapshot");
    // Registered under mu_ so no event is lost between the snapshot and the subscription.
    handle = watchers_.Add(std::string(job_id), fn);
  }
  fn(snapshot);
  return handle;
}

void JobManager::Unsubscribe(uint64_t handle) { watchers_.Remove(handle); }

}  // namespace nasforge
