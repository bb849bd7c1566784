#include "core/early_stopping.h"

#include <algorithm>
#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/pareto.h"
#include "core/status.h"

namespace nasforge {
namespace {

using Curve = google::protobuf::RepeatedPtrField<v1::CurvePoint>;

// Value at `epoch` (exact match), or false.
bool ValueAt(const Curve& c, int epoch, double* v) {
  for (const auto& p : c) {
    if (p.epoch() == epoch) {
      *v = p.value();
      return true;
    }
  }
  return false;
}

// Mean of the values up to and including `epoch`; false if the curve has none that early or
// does not reach `epoch`.
bool RunningAverage(const Curve& c, int epoch, double* avg) {
  double sum = 0;
  int n = 0;
  bool reached = false;
  for (const auto& p : c) {
    if (p.epoch() > epoch) break;
    sum += p.value();
    ++n;
    reached = reached || p.epoch() == epoch;
  }
  if (n == 0 || !reached) return false;
  *avg = sum / n;
  return true;
}

double MedianOf(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

StopDecision MedianRule(const StoppingInput& in, int epoch) {
  const auto& r = *in.rule;
  int grace = r.grace_epochs() > 0 ? r.grace_epochs() : 1;
  int min_completed = r.min_completed() > 0 ? r.min_completed() : 3;
  if (epoch < grace) return {};
  std::vector<double> avgs;
  for (const Curve* c : in.completed) {
    double a;
    if (RunningAverage(*c, epoch, &a)) avgs.push_back(a);
  }
  if (static_cast<int>(avgs.size()) < min_completed) return {};
  double best = -1e300;
  for (const auto& p : *in.curve) best = std::max(best, p.value());
  double med = MedianOf(avgs);
  if (best < med) {
    return {true, absl::StrFormat("median rule: best %.4f at epoch %d is below the median %.4f "
                                  "of %d completed trials' running averages",
                                  best, epoch, med, avgs.size())};
  }
  return {};
}

StopDecision Asha(const StoppingInput& in, int epoch, double value, bool hyperband) {
  const auto& r = *in.rule;
  int min_epochs = r.min_epochs() > 0 ? r.min_epochs() : 1;
  int eta = r.eta() > 0 ? r.eta() : 3;
  int bracket = -1;
  if (hyperband) {
    bracket = HyperbandBracket(in.trial_id, min_epochs, eta, in.max_epochs);
    for (int b = 0; b < bracket; ++b) min_epochs *= eta;
  }
  std::vector<int> rungs = AshaRungs(min_epochs, eta, in.max_epochs);
  if (std::find(rungs.begin(), rungs.end(), epoch) == rungs.end()) return {};
  // Every other trial (of the same bracket) that reached this rung, finished or running.
  std::vector<double> at_rung;
  auto collect = [&](const std::vector<const Curve*>& curves, const std::vector<int64_t>& ids) {
    for (size_t i = 0; i < curves.size(); ++i) {
      if (hyperband &&
          (i >= ids.size() || HyperbandBracket(ids[i], r.min_epochs() > 0 ? r.min_epochs() : 1, eta,
                                               in.max_epochs) != bracket)) {
        continue;
      }
      double v;
      if (ValueAt(*curves[i], epoch, &v)) at_rung.push_back(v);
    }
  };
  collect(in.completed, in.completed_ids);
  collect(in.others, in.others_ids);
  at_rung.push_back(value);
  // Top 1/eta of the rung (at least one promotion); ties promote.
  size_t k = std::max<size_t>(1, at_rung.size() / eta);
  std::sort(at_rung.begin(), at_rung.end(), std::greater<double>());
  double cutoff = at_rung[k - 1];
  if (value >= cutoff) return {};
  return {true, absl::StrFormat("%s: %.4f at rung epoch %d is not in the top 1/%d (cutoff "
                                "%.4f of %d trials)",
                                hyperband ? absl::StrCat("hyperband bracket ", bracket) : "asha",
                                value, epoch, eta, cutoff, at_rung.size())};
}

absl::Status ValidateAsha(const v1::EarlyStopping& es, int max_epochs, absl::string_view path) {
  if (es.min_epochs() < 0 || es.min_epochs() > max_epochs) {
    return FieldError(
        absl::StrCat(path, ".min_epochs"),
        absl::StrCat(es.min_epochs(), " is out of range [0, budget.epochs=", max_epochs, "]"));
  }
  if (es.eta() != 0 && (es.eta() < 2 || es.eta() > 100)) {
    return FieldError(absl::StrCat(path, ".eta"),
                      absl::StrCat(es.eta(), " is out of range [2, 100]"));
  }
  return absl::OkStatus();
}

absl::Status ValidateMedian(const v1::EarlyStopping& es, int, absl::string_view path) {
  if (es.grace_epochs() < 0) return FieldError(absl::StrCat(path, ".grace_epochs"), "must be >= 0");
  if (es.min_completed() < 0) {
    return FieldError(absl::StrCat(path, ".min_completed"), "must be >= 0");
  }
  return absl::OkStatus();
}

// The built-in rules: one line each.
void Builtins(StoppingRuleRegistry& r) {
  auto add = [&](StoppingRule rule) { r.AddBuiltin(std::move(rule)); };
  add({"none",
       "never stops a trial",
       [](const StoppingInput&, int) { return StopDecision{}; },
       {}});
  add({"median", "stop when the best value so far is below the median of completed trials",
       [](const StoppingInput& in, int epoch) { return MedianRule(in, epoch); }, ValidateMedian});
  add({"asha", "asynchronous successive halving: top 1/eta at each rung continue",
       [](const StoppingInput& in, int epoch) {
         return Asha(in, epoch, (*in.curve)[in.curve->size() - 1].value(), false);
       },
       ValidateAsha});
  add({"hyperband", "ASHA brackets by trial id; the last bracket trains to the end",
       [](const StoppingInput& in, int epoch) {
         return Asha(in, epoch, (*in.curve)[in.curve->size() - 1].value(), true);
       },
       ValidateAsha});
}

}  // namespace

StoppingInput CollectStoppingInput(const v1::JobSpec& spec, const v1::Trial& t,
                                   const std::deque<v1::Trial>& trials) {
  StoppingInput in;
  in.rule = &spec.early_stopping();
  in.max_epochs = spec.budget().epochs();
  in.curve = &t.curve();
  in.trial_id = t.id();
  for (const auto& o : trials) {
    // A variant's curve (a pruned network's fine-tuning) starts where its parent ended: not a
    // peer of the search's own curves.
    if (o.id() == t.id() || o.has_variant()) continue;
    if (o.state() == v1::TRIAL_SUCCEEDED || o.state() == v1::TRIAL_STOPPED) {
      in.completed.push_back(&o.curve());
      in.completed_ids.push_back(o.id());
    } else if (o.state() == v1::TRIAL_RUNNING) {
      in.others.push_back(&o.curve());
      in.others_ids.push_back(o.id());
    }
  }
  std::vector<std::string> costs;
  for (const auto& o : spec.objectives()) {
    if (o.metric() == "macs" || o.metric() == "params") costs.push_back(o.metric());
  }
  if (costs.empty()) return in;
  // Minimised points: (-accuracy, costs...); t's accuracy is its best validation value so far.
  auto metric = [](const v1::Trial& x, const std::string& k) {
    auto it = x.metrics().find(k);
    return it == x.metrics().end() ? 0.0 : it->second;
  };
  double best = -1e300;
  for (const auto& p : t.curve()) best = std::max(best, p.value());
  std::vector<double> mine = {-best};
  for (const auto& c : costs) mine.push_back(metric(t, c));
  in.on_cost_front = true;
  for (const auto& o : trials) {
    if (o.state() != v1::TRIAL_SUCCEEDED || !o.metrics().count("accuracy")) continue;
    std::vector<double> theirs = {-o.metrics().at("accuracy")};
    for (const auto& c : costs) theirs.push_back(metric(o, c));
    if (Dominates(theirs, mine)) {
      in.on_cost_front = false;
      break;
    }
  }
  return in;
}

StoppingRuleRegistry& StoppingRules() {
  return GlobalRegistry<StoppingRule>("early-stopping rule", Builtins);
}

int HyperbandBracket(int64_t trial_id, int min_epochs, int eta, int max_epochs) {
  int brackets = static_cast<int>(AshaRungs(min_epochs, eta, max_epochs).size()) + 1;
  return static_cast<int>(trial_id % brackets);
}

std::vector<int> AshaRungs(int min_epochs, int eta, int max_epochs) {
  std::vector<int> rungs;
  for (int64_t r = min_epochs; r < max_epochs; r *= eta) {
    rungs.push_back(static_cast<int>(r));
    if (eta < 2) break;
  }
  return rungs;
}

StopDecision Decide(const StoppingInput& in) {
  if (in.rule == nullptr || in.curve == nullptr || in.curve->empty()) return {};
  const std::string& name = in.rule->rule().empty() ? "none" : in.rule->rule();
  const StoppingRule* rule = StoppingRules().Find(name);
  if (rule == nullptr) return {};  // ValidateEarlyStopping refuses unknown names
  const auto& last = (*in.curve)[in.curve->size() - 1];
  if (last.epoch() >= in.max_epochs) return {};  // nothing left to save
  StopDecision d = rule->decide(in, last.epoch());
  bool keep_front = !in.rule->has_keep_cost_front() || in.rule->keep_cost_front();
  if (d.stop && keep_front && in.on_cost_front) {
    return {false, "kept: on the cost front (" + d.reason + ")"};
  }
  return d;
}

absl::Status ValidateEarlyStopping(const v1::EarlyStopping& es, int max_epochs,
                                   absl::string_view path) {
  const std::string& name = es.rule().empty() ? "none" : es.rule();
  const StoppingRule* rule = StoppingRules().Find(name);
  if (rule == nullptr) {
    return FieldError(absl::StrCat(path, ".rule"), StoppingRules().Unknown(name));
  }
  return rule->validate ? rule->validate(es, max_epochs, path) : absl::OkStatus();
}

}  // namespace nasforge
