// WorkerLoop: compressed variants (JobSpec.compression). A variant lease names the trial it is
// made from; the worker fetches that trial's trained weights from the controller in chunks and
// has its trainer compress them (worker/trainer.h Quantize, Prune; a pruned network is then
// fine-tuned like any trial, from the copied weights).
#include <algorithm>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/log.h"
#include "core/status.h"
#include "worker/worker_loop.h"

namespace nasforge {

absl::StatusOr<std::string> WorkerLoop::FetchParentWeights(const v1::Lease& l, bool teacher) {
  std::string weights;
  int64_t total = -1;
  while (total < 0 || static_cast<int64_t>(weights.size()) < total) {
    v1::GetParentArtifactRequest req;
    req.set_worker_id(worker_id_);
    *req.mutable_lease() = l;
    req.set_name("weights.pt");
    req.set_offset(static_cast<int64_t>(weights.size()));
    req.set_teacher(teacher);
    auto chunk = client_->GetParentArtifact(req);
    if (!chunk.ok()) {
      return absl::Status(chunk.status().code(),
                          absl::StrCat("fetching the ", teacher ? "teacher" : "parent",
                                       "'s weights: ", chunk.status().message()));
    }
    total = chunk->total_size();
    if (chunk->data().empty() && static_cast<int64_t>(weights.size()) < total) {
      return absl::DataLossError(absl::StrCat("fetching the ", teacher ? "teacher" : "parent",
                                              "'s weights: an empty chunk before the end"));
    }
    weights += chunk->data();
  }
  return weights;
}

absl::StatusOr<TrainResult> WorkerLoop::MakeVariant(
    const v1::LeaseTrialResponse& lease, TrainRequest train,
    const std::function<Verdict(const EpochReport&)>& on_epoch) {
  const v1::Variant& v = lease.variant();
  if (v.recipe().has_prune()) return MakePruned(lease, std::move(train), on_epoch);
  if (v.recipe().has_distill()) return MakeDistilled(lease, std::move(train), on_epoch);
  if (!v.recipe().has_int8()) {
    return absl::UnimplementedError(
        absl::StrCat("variant recipe ", v.recipe().name(),
                     ": this worker makes int8, prune and distill variants"));
  }
  NF_ASSIGN_OR_RETURN(std::string weights, FetchParentWeights(lease.lease()));
  QuantizeRequest q;
  q.architecture = lease.architecture();
  q.training = lease.training();
  q.weights = std::move(weights);
  q.calibration_batches = v.recipe().int8().calibration_batches();
  q.seed = lease.seed();
  q.split_seed = lease.split_seed();
  NF_ASSIGN_OR_RETURN(QuantizeResult made, trainer_->Quantize(q));
  TrainResult r;
  r.metrics = std::move(made.metrics);
  // The drop in accuracy points (the LibTorch trainer reports fractions), against the recipe's
  // tolerance: recorded, not enforced (quantization-aware fine-tuning is the next step).
  const double drop = 100.0 * (r.metrics["fp32_accuracy"] - r.metrics["accuracy"]);
  r.metrics["int8_within_tolerance"] = drop <= v.recipe().int8().tolerance() ? 1 : 0;
  if (!made.engine.empty()) {
    Log(LogLevel::kInfo, "int8_engine_measured",
        {{"job", lease.lease().job_id()},
         {"trial", lease.lease().trial_id()},
         {"worker", worker_id_},
         {"engine", made.engine},
         {"fp32_latency_ms", r.metrics["fp32_latency_ms"]},
         {"int8_latency_ms", r.metrics["latency_ms"]},
         {"engine_accuracy", r.metrics["int8_engine_accuracy"]}});
  }
  LogMade(lease, r);
  return r;
}

absl::StatusOr<PruneResult> WorkerLoop::PruneParent(const v1::LeaseTrialResponse& lease) {
  const v1::Variant& v = lease.variant();
  if (!v.has_of_architecture()) {
    return absl::InvalidArgumentError(
        "variant.of_architecture: a pruned variant's lease must carry its parent's architecture");
  }
  NF_ASSIGN_OR_RETURN(std::string weights, FetchParentWeights(lease.lease()));
  PruneRequest p;
  p.parent_architecture = v.of_architecture();
  p.architecture = lease.architecture();
  p.training = lease.training();
  p.weights = std::move(weights);
  p.seed = lease.seed();
  p.split_seed = lease.split_seed();
  return trainer_->Prune(p);
}

absl::StatusOr<TrainResult> WorkerLoop::MakeDistilled(
    const v1::LeaseTrialResponse& lease, TrainRequest train,
    const std::function<Verdict(const EpochReport&)>& on_epoch) {
  const v1::Variant& v = lease.variant();
  const v1::DistillCompression& d = v.recipe().distill();
  if (!v.has_teacher_architecture()) {
    return absl::InvalidArgumentError(
        "variant.teacher_architecture: a distilled variant's lease must carry its teacher");
  }
  std::map<std::string, double> copied;
  if (!d.student().empty()) {  // the pruned member, from its copied weights
    NF_ASSIGN_OR_RETURN(PruneResult pruned, PruneParent(lease));
    train.initial_weights = std::move(pruned.weights);
    copied = std::move(pruned.metrics);
  }
  train.epochs = d.epochs();
  TrainRequest::Teacher teacher;
  teacher.architecture = v.teacher_architecture();
  NF_ASSIGN_OR_RETURN(teacher.weights, FetchParentWeights(lease.lease(), /*teacher=*/true));
  teacher.alpha = d.alpha();
  teacher.temperature = d.temperature();
  // The control first: the same student, seed and epochs without the teacher. Its epochs are not
  // reported (the lease's curve is the distilled run's); the lease's abort still ends it.
  std::optional<TrainResult> control;
  if (!d.no_control()) {
    NF_ASSIGN_OR_RETURN(
        control, trainer_->Train(
                     train, [](const EpochReport&) { return Verdict::kContinue; }, abort_trial_));
    Log(LogLevel::kInfo, "distill_control_trained",
        {{"job", lease.lease().job_id()},
         {"trial", lease.lease().trial_id()},
         {"worker", worker_id_},
         {"control_accuracy", control->metrics["accuracy"]}});
  }
  train.teacher = std::move(teacher);
  NF_ASSIGN_OR_RETURN(TrainResult r, trainer_->Train(train, on_epoch, abort_trial_));
  if (control) {
    for (const char* m : {"accuracy", "test_accuracy"}) {
      auto it = control->metrics.find(m);
      if (it != control->metrics.end()) r.metrics[absl::StrCat("control_", m)] = it->second;
    }
    r.metrics["distill_gain"] = r.metrics["accuracy"] - control->metrics["accuracy"];
  }
  for (auto& [k, value] : copied) r.metrics.emplace(k, value);
  LogMade(lease, r);
  return r;
}

absl::StatusOr<TrainResult> WorkerLoop::MakePruned(
    const v1::LeaseTrialResponse& lease, TrainRequest train,
    const std::function<Verdict(const EpochReport&)>& on_epoch) {
  const v1::Variant& v = lease.variant();
  NF_ASSIGN_OR_RETURN(PruneResult pruned, PruneParent(lease));
  Log(LogLevel::kInfo, "variant_pruned",
      {{"job", lease.lease().job_id()},
       {"trial", lease.lease().trial_id()},
       {"worker", worker_id_},
       {"variant_of", v.of()},
       {"parent_accuracy", pruned.metrics["parent_accuracy"]},
       {"pruned_accuracy", pruned.metrics["pruned_accuracy"]},
       {"fine_tune_epochs", std::max(0, v.recipe().prune().epochs())}});
  // Fine-tuning: the job's training recipe and early stopping, from the copied weights.
  train.initial_weights = std::move(pruned.weights);
  train.epochs = std::max(0, v.recipe().prune().epochs());
  NF_ASSIGN_OR_RETURN(TrainResult r, trainer_->Train(train, on_epoch, abort_trial_));
  for (auto& [k, value] : pruned.metrics)
    r.metrics.emplace(k, value);  // the trained network's first
  LogMade(lease, r);
  return r;
}

void WorkerLoop::LogMade(const v1::LeaseTrialResponse& lease, const TrainResult& r) {
  // Read, never inserted: a metric the variant does not have stays out of its report.
  const auto metric = [&r](const char* m) {
    auto it = r.metrics.find(m);
    return it == r.metrics.end() ? std::string("-") : absl::StrCat(it->second);
  };
  Log(LogLevel::kInfo, "variant_made",
      {{"job", lease.lease().job_id()},
       {"trial", lease.lease().trial_id()},
       {"worker", worker_id_},
       {"variant_of", lease.variant().of()},
       {"recipe", lease.variant().recipe().name()},
       {"parent_accuracy", metric("parent_accuracy")},
       {"accuracy", metric("accuracy")},
       {"size_bytes", metric("size_bytes")}});
}

}  // namespace nasforge
