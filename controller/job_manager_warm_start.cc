// JobManager: warm start (JobSpec.warm_start). At submission the sources are checked and their
// cut-offs recorded; their trials are told to the new job's strategy before anything else (the
// same way again at recovery), an architecture they trained is never trained again, and with
// the same recipe their results become trials of the new job.
#include <google/protobuf/util/message_differencer.h>

#include <cstdint>
#include <string>

#include "absl/strings/str_cat.h"
#include "controller/job_manager.h"
#include "controller/job_manager_util.h"
#include "core/log.h"
#include "core/status.h"
#include "core/trial_state.h"

namespace nasforge {
namespace {

using namespace job_manager_internal;  // NOLINT: this class's own helpers

using google::protobuf::util::MessageDifferencer;

// What decides a trained result: the training settings, epochs, early stopping, the accuracy
// scale and the hardware targets. Two jobs with equal recipes would train a candidate alike.
v1::JobSpec Recipe(const v1::JobSpec& s) {
  v1::JobSpec r;
  *r.mutable_training() = s.training();
  r.mutable_budget()->set_epochs(s.budget().epochs());
  *r.mutable_early_stopping() = s.early_stopping();
  r.set_accuracy_scale(s.accuracy_scale());
  *r.mutable_hardware_targets() = s.hardware_targets();
  return r;
}

}  // namespace

absl::Status JobManager::ResolveWarmStart(v1::JobSpec& spec, const Principal& caller) const {
  v1::WarmStart* w = spec.mutable_warm_start();
  w->clear_sources();
  for (int i = 0; i < w->jobs_size(); ++i) {
    const std::string field = absl::StrCat("warm_start.jobs[", i, "]");
    auto src = FindVisible(w->jobs(i), caller);
    if (!src.ok()) {
      return absl::Status(src.status().code(), absl::StrCat(field, ": ", src.status().message()));
    }
    const v1::JobSpec& from = (*src)->job.spec();
    v1::SearchSpace theirs = from.search_space(), ours = spec.search_space();
    theirs.clear_name();  // a space is its choices, whatever it is called
    ours.clear_name();
    if (!MessageDifferencer::Equals(theirs, ours)) {
      return FieldError(field, absl::StrCat("job ", w->jobs(i), " searches another space ('",
                                            from.search_space().name(),
                                            "'); warm start needs the same search_space"));
    }
    v1::WarmStartSource* s = w->add_sources();
    s->set_job_id(w->jobs(i));
    s->set_up_to_finish_seq((*src)->job.finish_seq());
    s->set_same_recipe(MessageDifferencer::Equals(Recipe(from), Recipe(spec)));
  }
  return absl::OkStatus();
}

std::vector<std::pair<const v1::Trial*, bool>> JobManager::WarmStartTrials(
    const v1::JobSpec& spec) const {
  std::vector<std::pair<const v1::Trial*, bool>> out;
  std::set<std::string> hashes;
  for (const v1::WarmStartSource& s : spec.warm_start().sources()) {
    auto it = jobs_.find(s.job_id());
    if (it == jobs_.end()) {
      Log(LogLevel::kWarn, "warm_start_source_gone",
          {{"source", s.job_id()},
           {"effect", "its trials are not told to the strategy (the job was deleted)"}});
      continue;
    }
    std::vector<const v1::Trial*> done;
    for (const v1::Trial& t : it->second->trials) {
      if (!t.has_variant() &&
          (t.state() == v1::TRIAL_SUCCEEDED || t.state() == v1::TRIAL_STOPPED) &&
          t.finish_seq() > 0 && t.finish_seq() <= s.up_to_finish_seq()) {
        done.push_back(&t);
      }
    }
    std::sort(done.begin(), done.end(), [](const v1::Trial* a, const v1::Trial* b) {
      return a->finish_seq() < b->finish_seq();
    });
    for (const v1::Trial* t : done) {
      if (hashes.insert(t->arch_hash()).second) out.emplace_back(t, s.same_recipe());
    }
  }
  // Prior observations first, then the reused results (which become the job's first finished
  // trials): the order recovery tells them in.
  std::stable_partition(out.begin(), out.end(), [](const auto& p) { return !p.second; });
  return out;
}

void JobManager::ApplyWarmStart(JobState& js, Strategy& strategy, std::set<std::string>& seen,
                                WriteBatch& batch) {
  int reused = 0, priors = 0;
  for (const auto& [src, same] : WarmStartTrials(js.job.spec())) {
    seen.insert(src->arch_hash());
    if (!same) {
      strategy.Tell(*src);
      ++priors;
      continue;
    }
    v1::Trial t;
    t.set_job_id(js.job.id());
    t.set_id(static_cast<int64_t>(js.trials.size()));
    *t.mutable_architecture() = src->architecture();
    t.set_arch_hash(src->arch_hash());
    *t.mutable_metrics() = src->metrics();
    *t.mutable_curve() = src->curve();
    *t.mutable_latencies() = src->latencies();
    t.set_worker_id(src->worker_id());
    t.set_hardware_profile(src->hardware_profile());
    t.set_warm_start_from(absl::StrCat(src->job_id(), "/", src->id()));
    *t.mutable_create_time() = ToProto(clock_->Now());
    *t.mutable_update_time() = t.create_time();
    js.trials.push_back(std::move(t));
    v1::Trial& added = js.trials.back();
    SetTrialState(js, added, src->state());
    js.job.set_finish_seq(js.job.finish_seq() + 1);
    added.set_finish_seq(js.job.finish_seq());
    IndexFinished(js, added);
    const auto& obj = js.job.spec().objectives(0);
    auto m = added.metrics().find(obj.metric());
    if (added.state() == v1::TRIAL_SUCCEEDED && m != added.metrics().end() &&
        (!js.job.has_best_objective() ||
         (obj.direction() == v1::MAXIMIZE ? m->second > js.job.best_objective()
                                          : m->second < js.job.best_objective()))) {
      js.job.set_best_objective(m->second);
    }
    js.job.mutable_counts()->set_warm_started(js.job.counts().warm_started() + 1);
    Stage(batch, added);
    ++reused;
  }
  // The reused trials are told as the job's own finished trials, after the priors.
  for (const v1::Trial& t : js.trials) strategy.Tell(t);
  if (reused + priors > 0) {
    Log(LogLevel::kInfo, "warm_started",
        {{"job", js.job.id()}, {"reused", reused}, {"priors", priors}});
  }
}

absl::Status JobManager::CheckNotWarmStartSource(const std::string& job_id) const {
  for (const auto& [id, js] : jobs_) {
    if (JobTerminal(js->job.state())) continue;
    for (const auto& s : js->job.spec().warm_start().sources()) {
      if (s.job_id() == job_id) {
        return absl::FailedPreconditionError(absl::StrCat(
            "job_id: running job ", id, " warm-starts from ", job_id,
            " (its strategy is told this job's trials again after a restart); delete it once ", id,
            " has ended"));
      }
    }
  }
  return absl::OkStatus();
}

}  // namespace nasforge
