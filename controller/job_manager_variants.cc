// JobManager: compressed variants of the search's front members (JobSpec.compression, issue
// #30). A variant is a trial of its own (Trial.variant: its parent and recipe), leased with the
// same leases, heartbeats, retries and exactly-once reports as any trial, but only to workers
// that registered its compression kind; the strategy never hears of it, it does not count
// against max_trials, and it stays out of the search's own front.
#include <algorithm>
#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "controller/job_manager.h"
#include "controller/job_manager_util.h"
#include "core/compression.h"
#include "core/cost.h"
#include "core/log.h"
#include "core/search_space.h"
#include "core/status.h"

namespace nasforge {

using namespace job_manager_internal;  // NOLINT: this class's own helpers

namespace job_manager_internal {

bool MakesVariant(const v1::Worker& w, const v1::Trial& t) {
  if (!t.has_variant()) return true;
  const std::string kind = CompressionKind(t.variant().recipe());
  return std::find(w.compression().begin(), w.compression().end(), kind) != w.compression().end();
}

}  // namespace job_manager_internal

absl::StatusOr<int64_t> JobManager::VariantParent(const v1::Lease& lease,
                                                  const std::string& worker_id, bool teacher) {
  absl::MutexLock l(&mu_);
  NF_ASSIGN_OR_RETURN(auto jt, CheckLease(lease, worker_id, /*allow_cancelled=*/false));
  const v1::Trial& t = *jt.second;
  if (!t.has_variant()) {
    return absl::FailedPreconditionError(
        absl::StrCat("trial ", t.id(), " of job ", t.job_id(), " is not a variant"));
  }
  if (teacher) {
    if (!t.variant().recipe().has_distill()) {
      return absl::FailedPreconditionError(
          absl::StrCat("trial ", t.id(), " of job ", t.job_id(), " is not distilled: no teacher"));
    }
    return t.variant().teacher();
  }
  return t.variant().of();
}

void JobManager::FailUnmakeable(std::set<JobState*>& changed, WriteBatch& batch, Events& events) {
  const std::vector<v1::Worker> live = workers_.Live();
  std::map<LeaseTable::Key, absl::Time> waiting;
  const absl::Time steady = clock_->Steady();
  for (const std::string& id : job_order_) {
    JobState& js = *jobs_.at(id);
    if (live.empty()) break;
    if (js.job.state() != v1::JOB_RUNNING || js.queued_variants == 0) continue;
    const std::vector<int64_t> queued(js.queued.begin(), js.queued.end());  // changes below
    for (int64_t trial_id : queued) {
      v1::Trial& t = js.trials[trial_id];
      if (!t.has_variant() || t.state() != v1::TRIAL_QUEUED) continue;
      if (std::any_of(live.begin(), live.end(),
                      [&](const v1::Worker& w) { return MakesVariant(w, t); })) {
        continue;
      }
      const LeaseTable::Key key{js.job.id(), t.id()};
      auto seen = unmakeable_since_.find(key);
      const absl::Time since = seen == unmakeable_since_.end() ? steady : seen->second;
      if (steady - since < options_.unplaceable_after) {
        waiting.emplace(key, since);
        continue;
      }
      const std::string kind = CompressionKind(t.variant().recipe());
      SetTrialState(js, t, v1::TRIAL_FAILED);
      t.set_error(absl::StrCat("no live worker makes ", kind,
                               " variants: start a LibTorch nasforge-worker (it registers ", kind,
                               ")"));
      *t.mutable_update_time() = ToProto(clock_->Now());
      Finished(js, t);
      if (metrics_) metrics_->trials_finished_total.Increment();
      Log(LogLevel::kWarn, "variant_unmakeable",
          {{"job", js.job.id()},
           {"trial", t.id()},
           {"kind", kind},
           {"action", "failed; start a worker that makes this kind"}});
      Stage(batch, t);
      AddEvent(events, js, &t, "trial_finished");
      changed.insert(&js);
    }
  }
  unmakeable_since_ = std::move(waiting);
}

namespace {

// The search trial a distilled variant learns from: the named one, or the job's most accurate
// (its first maximized objective, "accuracy" by default); nullptr if there is none.
const v1::Trial* Teacher(const std::deque<v1::Trial>& trials, const v1::JobSpec& spec,
                         const v1::DistillCompression& d, std::string* why) {
  if (std::optional<int64_t> id = NamedTeacher(d)) {
    if (*id >= static_cast<int64_t>(trials.size()) || trials[*id].has_variant() ||
        trials[*id].state() != v1::TRIAL_SUCCEEDED) {
      *why = absl::StrCat("teacher trial ", *id, " is not a succeeded search trial of the job");
      return nullptr;
    }
    return &trials[*id];
  }
  std::string metric = "accuracy";
  for (const auto& o : spec.objectives()) {
    if (o.direction() == v1::MAXIMIZE) {
      metric = o.metric();
      break;
    }
  }
  const v1::Trial* best = nullptr;
  for (const v1::Trial& t : trials) {
    auto it = t.metrics().find(metric);
    if (t.has_variant() || t.state() != v1::TRIAL_SUCCEEDED || it == t.metrics().end()) continue;
    if (best == nullptr || it->second > best->metrics().at(metric)) best = &t;
  }
  if (best == nullptr) *why = absl::StrCat("no succeeded search trial reports ", metric);
  return best;
}

void SetNetwork(const v1::Architecture& arch, const v1::JobSpec& spec, v1::Trial* t) {
  const ArchCost cost = ComputeCost(arch);
  (*t->mutable_metrics())["macs"] = static_cast<double>(cost.macs);
  (*t->mutable_metrics())["params"] = static_cast<double>(cost.params);
  (*t->mutable_metrics())["train_memory_bytes"] =
      static_cast<double>(TrainingMemoryBytes(cost, spec.training().batch_size()));
  t->set_arch_hash(ArchHash(arch));
  *t->mutable_architecture() = arch;
}

}  // namespace

std::string JobManager::VariantNetwork(const JobState& js, const v1::Trial& p,
                                       const v1::CompressionRecipe& recipe, v1::Trial* t) {
  const v1::JobSpec& spec = js.job.spec();
  *t->mutable_architecture() = p.architecture();
  t->set_arch_hash(p.arch_hash());
  if (!VariantIsOwnNetwork(recipe)) {
    // The parent's layers run another way (int8): the same counts (int8 MACs).
    for (const char* m : {"macs", "params", "train_memory_bytes"}) {
      auto it = p.metrics().find(m);
      if (it != p.metrics().end()) (*t->mutable_metrics())[m] = it->second;
    }
    return "";
  }
  // A network of its own (pruned, distilled): its architecture, counts and latency are its own.
  const v1::CompressionRecipe* prune = &recipe;
  if (recipe.has_distill()) {
    std::string why;
    const v1::Trial* teacher = Teacher(js.trials, spec, recipe.distill(), &why);
    if (teacher == nullptr) return why;
    t->mutable_variant()->set_teacher(teacher->id());
    *t->mutable_variant()->mutable_teacher_architecture() = teacher->architecture();
    prune = recipe.distill().student().empty()
                ? nullptr
                : FindRecipe(spec.compression(), recipe.distill().student());
  }
  if (prune == nullptr) {  // the member's own architecture, trained again
    SetNetwork(p.architecture(), spec, t);
    return "";
  }
  absl::StatusOr<v1::Architecture> own =
      PrunedArchitecture(p.architecture(), prune->prune().ratio());
  if (!own.ok()) return std::string(own.status().message());
  *t->mutable_variant()->mutable_of_architecture() = p.architecture();
  SetNetwork(*own, spec, t);
  return "";
}

void JobManager::MakeVariants(JobState& js, const v1::Trial& parent, WriteBatch& batch,
                              Events& events) {
  const auto& recipes = js.job.spec().compression().recipes();
  if (recipes.empty() || parent.has_variant() || parent.state() != v1::TRIAL_SUCCEEDED ||
      js.front == nullptr) {
    return;
  }
  const std::vector<int64_t> front = js.front->Ids();
  if (!std::binary_search(front.begin(), front.end(), parent.id())) return;
  const int64_t parent_id = parent.id();
  for (const v1::CompressionRecipe& recipe : recipes) {
    const v1::Trial& p = js.trials[parent_id];  // push_back below never moves it (a deque)
    v1::Trial t;
    t.set_job_id(js.job.id());
    t.set_id(static_cast<int64_t>(js.trials.size()));
    t.mutable_variant()->set_of(parent_id);
    *t.mutable_variant()->mutable_recipe() = recipe;
    // Why the variant cannot be made, if it cannot.
    const std::string unmade = VariantNetwork(js, p, recipe, &t);
    *t.mutable_create_time() = ToProto(clock_->Now());
    *t.mutable_update_time() = t.create_time();
    js.trials.push_back(std::move(t));
    v1::Trial& added = js.trials.back();
    js.job.mutable_counts()->set_variants(js.job.counts().variants() + 1);
    if (!unmade.empty()) {
      SetTrialState(js, added, v1::TRIAL_FAILED);
      added.set_error(absl::StrCat("variant not made: ", unmade));
      Finished(js, added);
      Log(LogLevel::kWarn, "variant_unmade",
          {{"job", js.job.id()},
           {"trial", added.id()},
           {"variant_of", parent_id},
           {"recipe", recipe.name()},
           {"why", unmade}});
      Stage(batch, added);
      AddEvent(events, js, &added, "trial_finished");
      continue;
    }
    SetTrialState(js, added, v1::TRIAL_QUEUED);
    Stage(batch, added);
    AddEvent(events, js, &added, "trial_enqueued");
    Log(LogLevel::kInfo, "variant_created",
        {{"job", js.job.id()},
         {"trial", added.id()},
         {"variant_of", parent_id},
         {"recipe", recipe.name()},
         {"kind", CompressionKind(recipe)}});
    if (AwaitsMeasurement(js, added)) PlanMeasurements(js, added, batch, events);
  }
  Touch(js.job);
}

}  // namespace nasforge
