// Controller-side early-stopping rules as pure functions over learning curves, so they are
// deterministic and testable with scripted curves. The controller calls Decide() on every
// progress report and answers CONTINUE or STOP. Rules are registered by name (StoppingRules():
// none, median, asha, hyperband); adding one is its function, its test and one line in
// early_stopping.cc's Builtins(), or an Add() at run time.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "core/registry.h"
#include "nasforge/v1/nasforge.pb.h"

namespace nasforge {

struct StopDecision {
  bool stop = false;
  std::string reason;  // why, for the worker's log and the trial record
};

// Everything a rule may look at for one report.
struct StoppingInput {
  const v1::EarlyStopping* rule = nullptr;
  int max_epochs = 1;
  // The reporting trial's curve, including the new point (epochs ascending).
  const google::protobuf::RepeatedPtrField<v1::CurvePoint>* curve = nullptr;
  // Curves of the job's other trials: finished (succeeded/stopped) and, for ASHA, running ones.
  std::vector<const google::protobuf::RepeatedPtrField<v1::CurvePoint>*> completed;
  std::vector<const google::protobuf::RepeatedPtrField<v1::CurvePoint>*> others;
  // Trial ids (hyperband assigns brackets by id): of the reporting trial, and parallel to
  // `completed` and `others`.
  int64_t trial_id = 0;
  std::vector<int64_t> completed_ids, others_ids;
  // True when the trial's cost metrics put it on the cost front (see keep_cost_front).
  bool on_cost_front = false;
};

// The registered rule named by in.rule->rule() applied to the newest point of in.curve; never
// stops at the last epoch, and keeps a trial on the cost front unless keep_cost_front is false.
StopDecision Decide(const StoppingInput& in);

// What the rules see for `t`'s newest progress point in a job of `spec` whose trials are
// `trials` (t among them): the curves of its finished and running peers, and whether t is on the
// cost front: no succeeded trial is at least as accurate as t's best so far and no more costly in
// every cost objective known before training (macs, params). Points into `spec`, `t` and
// `trials`, which must outlive the result.
StoppingInput CollectStoppingInput(const v1::JobSpec& spec, const v1::Trial& t,
                                   const std::deque<v1::Trial>& trials);

struct StoppingRule {
  std::string name;     // EarlyStopping.rule
  std::string summary;  // one line, for help texts
  // The decision for the newest point of in.curve, at `epoch` (< in.max_epochs).
  std::function<StopDecision(const StoppingInput& in, int epoch)> decide;
  // Checks the rule's own fields (`path` is the EarlyStopping message's field path). May be
  // empty.
  std::function<absl::Status(const v1::EarlyStopping&, int max_epochs, absl::string_view path)>
      validate;
};
using StoppingRuleRegistry = NameRegistry<StoppingRule>;

// The process-wide registry, holding the built-in rules.
StoppingRuleRegistry& StoppingRules();

// Validates the rule's fields; `path` prefixes field names ("early_stopping.eta: ...").
absl::Status ValidateEarlyStopping(const v1::EarlyStopping& es, int max_epochs,
                                   absl::string_view path);

// ASHA rung epochs below max_epochs: min_epochs * eta^k.
std::vector<int> AshaRungs(int min_epochs, int eta, int max_epochs);

// Hyperband on top of ASHA: trial `id` runs in bracket id % (rungs + 1); bracket b starts its
// rungs at min_epochs * eta^b, and the last bracket trains everything to the end.
int HyperbandBracket(int64_t trial_id, int min_epochs, int eta, int max_epochs);

}  // namespace nasforge
