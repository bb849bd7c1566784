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
#include "core/trial_state.h"

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
                                       const v1::CompressionRecipe& recipe,
                                       const v1::Compression& scope, v1::Trial* t) {
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
    prune = recipe.distill().student().empty() ? nullptr
                                               : FindRecipe(scope, recipe.distill().student());
    if (prune == nullptr && !recipe.distill().student().empty()) {
      return absl::StrCat("student '", recipe.distill().student(), "' names no prune recipe");
    }
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

v1::Trial& JobManager::AddVariant(JobState& js, int64_t parent_id,
                                  const v1::CompressionRecipe& recipe, const v1::Compression& scope,
                                  WriteBatch& batch, Events& events) {
  const v1::Trial& p = js.trials[parent_id];  // push_back below never moves it (a deque)
  v1::Trial t;
  t.set_job_id(js.job.id());
  t.set_id(static_cast<int64_t>(js.trials.size()));
  t.mutable_variant()->set_of(parent_id);
  *t.mutable_variant()->mutable_recipe() = recipe;
  const std::string unmade = VariantNetwork(js, p, recipe, scope, &t);
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
    return added;
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
  return added;
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
    AddVariant(js, parent_id, recipe, js.job.spec().compression(), batch, events);
  }
  Touch(js.job);
}

absl::StatusOr<v1::CompressTrialResponse> JobManager::CompressTrial(
    const v1::CompressTrialRequest& req, const Principal& caller) {
  WriteBatch batch;
  Events events;
  v1::CompressTrialResponse out;
  {
    absl::MutexLock l(&mu_);
    NF_ASSIGN_OR_RETURN(JobState * js, FindJob(req.job_id()));
    NF_RETURN_IF_ERROR(CheckVisible(*js, caller));
    // The recipes, validated as a spec's (their own and the job's names in one scope).
    v1::JobSpec spec = js->job.spec();
    v1::Compression asked;
    *asked.mutable_recipes() = req.recipes();
    if (asked.recipes_size() == 0) asked = spec.compression();
    if (asked.recipes_size() == 0) {
      return FieldError("recipes", "none given and the job has none (compression.recipes)");
    }
    ApplyCompressionDefaults(&asked, spec.budget().epochs());
    *spec.mutable_compression() = asked;
    NF_RETURN_IF_ERROR(ValidateCompression(spec, ""));
    v1::Compression scope = asked;
    for (const auto& r : js->job.spec().compression().recipes()) {
      if (FindRecipe(scope, r.name()) == nullptr) *scope.add_recipes() = r;
    }
    if (req.trial_id() < 0 || req.trial_id() >= static_cast<int64_t>(js->trials.size())) {
      return absl::NotFoundError(
          absl::StrCat("trial_id: job ", req.job_id(), " has no trial ", req.trial_id()));
    }
    const v1::Trial& parent = js->trials[req.trial_id()];
    if (parent.has_variant() || parent.state() != v1::TRIAL_SUCCEEDED) {
      return absl::FailedPreconditionError(
          absl::StrCat("trial_id: trial ", parent.id(), " is ",
                       parent.has_variant() ? "a variant" : v1::TrialState_Name(parent.state()),
                       "; variants are made of succeeded search trials"));
    }
    if (js->job.state() == v1::JOB_CANCELLED) {
      return absl::FailedPreconditionError(
          absl::StrCat("job ", req.job_id(), " is cancelled; resume it first (nasforge resume ",
                       req.job_id(), ")"));
    }
    for (const v1::Trial& t : js->trials) {
      if (!t.has_variant() || t.variant().of() != parent.id() || t.state() == v1::TRIAL_FAILED) {
        continue;
      }
      if (FindRecipe(asked, t.variant().recipe().name()) != nullptr) {
        return absl::AlreadyExistsError(
            absl::StrCat("recipe ", t.variant().recipe().name(), ": trial ", parent.id(),
                         " has that variant already (trial ", t.id(), ")"));
      }
    }
    NF_RETURN_IF_ERROR(writer_->Admit());
    const v1::JobState was = js->job.state();
    if (JobTerminal(was)) {  // runs again until its variants are made
      js->job.set_state(v1::JOB_RUNNING);
      js->job.clear_end_time();
      js->job.clear_error();
    }
    for (const v1::CompressionRecipe& recipe : asked.recipes()) {
      *out.add_variants() = AddVariant(*js, parent.id(), recipe, scope, batch, events);
    }
    Touch(js->job);
    Stage(batch, js->job);
    AddEvent(events, *js, nullptr, "job_compressing");
    MaybeFinish(*js, events);  // every variant refused: the job ends again
    UpdateGauges();
    Log(LogLevel::kInfo, "trial_compressing",
        {{"job", js->job.id()},
         {"trial", parent.id()},
         {"recipes", asked.recipes_size()},
         {"was", v1::JobState_Name(was)}});
    EnqueueLocked(std::move(batch));
  }
  Publish(std::move(events));
  return out;
}

}  // namespace nasforge
