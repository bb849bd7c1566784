#include "report/format.h"

#include <google/protobuf/util/json_util.h>

#include <algorithm>
#include <cctype>
#include <map>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "core/search_space.h"
#include "core/trial_state.h"

namespace nasforge::report {
namespace {

double Seconds(const google::protobuf::Timestamp& t) { return t.seconds() + t.nanos() / 1e9; }

// The metric formatted with `format`, or "-" when the trial has no such metric.
std::string MetricOr(const v1::Trial& t, const std::string& key,
                     const absl::ParsedFormat<'f'>& format) {
  auto it = t.metrics().find(key);
  return it == t.metrics().end() ? "-" : absl::StrFormat(format, it->second);
}

std::string HumanMetric(const v1::Trial& t, const std::string& key) {
  auto it = t.metrics().find(key);
  return it == t.metrics().end() ? "-" : HumanNumber(it->second);
}

// Trials in a terminal state (succeeded, stopped, failed, cancelled).
// Ended trials of the job's own budget (reused warm-start results are not among them).
int Finished(const v1::JobCounts& c) {
  int n = 0;
  for (v1::TrialState s : TrialStates()) {
    if (TrialTerminal(s)) n += CountOf(c, s);
  }
  return n - c.warm_started();
}

}  // namespace

std::string HumanNumber(double v) {
  if (v >= 1e9) return absl::StrFormat("%.3fG", v / 1e9);
  if (v >= 1e6) return absl::StrFormat("%.3fM", v / 1e6);
  if (v >= 1e3) return absl::StrFormat("%.1fK", v / 1e3);
  return absl::StrFormat("%.4g", v);
}

std::string HumanDuration(double seconds) {
  if (seconds < 0) return "-";
  const long t = static_cast<long>(seconds + 0.5);
  if (t >= 3600) return absl::StrFormat("%dh%02dm", t / 3600, t / 60 % 60);
  if (t >= 60) return absl::StrFormat("%dm%02ds", t / 60, t % 60);
  return absl::StrFormat("%ds", t);
}

std::string ShortState(absl::string_view enum_name) {
  for (absl::string_view prefix : {"TRIAL_", "JOB_"}) {
    if (enum_name.substr(0, prefix.size()) == prefix) {
      enum_name.remove_prefix(prefix.size());
      break;
    }
  }
  std::string s(enum_name);
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string ProgressLine(const v1::Job& job, double now_seconds) {
  const auto& c = job.counts();
  // Compressed variants are trials beyond the budget: counted in the total, and named.
  const int total = std::max(1, job.spec().budget().max_trials() + c.variants());
  const int done = Finished(c);
  constexpr int kWidth = 24;
  const int fill = std::clamp(done * kWidth / total, 0, kWidth);
  const double elapsed =
      (job.has_end_time() ? Seconds(job.end_time()) : now_seconds) - Seconds(job.create_time());
  const double eta = done > 0 && done < total ? elapsed / done * (total - done) : -1;
  const std::string best =
      job.has_best_objective() && job.spec().objectives_size() > 0
          ? absl::StrFormat("%s %.4g", job.spec().objectives(0).metric(), job.best_objective())
          : "-";
  const std::string variants =
      c.variants() > 0 ? absl::StrFormat(" (%d variants)", c.variants()) : "";
  return absl::StrFormat("[%s%s] %d/%d%s done  %d running  %d failed  best %s  elapsed %s  eta %s",
                         std::string(fill, '#'), std::string(kWidth - fill, '.'), done, total,
                         variants, c.running(), c.failed(), best, HumanDuration(elapsed),
                         HumanDuration(eta));
}

std::string FormatJob(const v1::Job& j) {
  const auto& c = j.counts();
  std::string s = absl::StrCat(
      "job        ", j.id(),
      j.spec().name().empty() ? "" : absl::StrCat("  (", j.spec().name(), ")"), "\nstate      ",
      ShortState(v1::JobState_Name(j.state())), "\nstrategy   ", j.spec().strategy().name(),
      ", seed ", j.spec().budget().seed(), "\ntrials     ", c.succeeded(), " succeeded, ",
      c.stopped(), " stopped, ", c.running(), " running, ", c.queued(), " queued, ", c.failed(),
      " failed, ", c.cancelled(), " cancelled (budget ", j.spec().budget().max_trials(),
      ")\nrejected   ", c.rejected_by_cost(), " candidates over a cost bound",
      c.rejected_by_latency() > 0
          ? absl::StrCat(", ", c.rejected_by_latency(), " over a latency bound (measured)")
          : std::string(),
      "\n");
  if (c.warm_started() > 0 || j.spec().warm_start().sources_size() > 0) {
    std::vector<std::string> from;
    for (const auto& src : j.spec().warm_start().sources()) {
      from.push_back(absl::StrCat(
          src.job_id(), src.same_recipe() ? " (results reused)" : " (prior observations)"));
    }
    absl::StrAppend(&s, "warm start ", c.warm_started(), " trials reused; from ",
                    absl::StrJoin(from, ", "), "\n");
  }
  if (j.has_best_objective() && j.spec().objectives_size() > 0) {
    absl::StrAppend(&s, "best       ", j.spec().objectives(0).metric(), " = ",
                    absl::StrFormat("%g", j.best_objective()), "\n");
  }
  if (!j.error().empty()) absl::StrAppend(&s, "note       ", j.error(), "\n");
  return s;
}

std::string FormatJobList(const v1::ListJobsResponse& jobs) {
  std::string s =
      absl::StrFormat("%-18s %-10s %-6s %-6s %s\n", "job", "state", "done", "budget", "name");
  for (const auto& j : jobs.jobs()) {
    // Labels after the name, sorted: "fashion-quick  team=vision tier=gold".
    std::map<std::string, std::string> labels(j.spec().labels().begin(), j.spec().labels().end());
    std::string shown = j.spec().name();
    for (const auto& [k, v] : labels) absl::StrAppend(&shown, "  ", k, "=", v);
    absl::StrAppendFormat(&s, "%-18s %-10s %-6d %-6d %s\n", j.id(),
                          ShortState(v1::JobState_Name(j.state())), Finished(j.counts()),
                          j.spec().budget().max_trials(), shown);
  }
  return s;
}

namespace {
// The trial's latency measured on `profile` (a hardware target's name or profile), "-" if none.
std::string TargetLatency(const v1::Trial& t, const std::string& profile) {
  for (const auto& m : t.latencies()) {
    if (m.target() == profile || m.profile() == profile) return absl::StrFormat("%.3f", m.p50_ms());
  }
  return "-";
}
}  // namespace

std::string FormatTrials(const google::protobuf::RepeatedPtrField<v1::Trial>& trials,
                         const std::string& profile) {
  static const auto* const k4 = new absl::ParsedFormat<'f'>("%.4f");
  static const auto* const k3 = new absl::ParsedFormat<'f'>("%.3f");
  static const auto* const k1 = new absl::ParsedFormat<'f'>("%.1f");
  static const auto* const k0 = new absl::ParsedFormat<'f'>("%.0f");
  std::string s = absl::StrFormat("%-5s %-10s %-9s %-9s %-9s %-9s %-10s %-8s %-7s %s\n", "trial",
                                  "state", "val_acc", "test_acc", "macs", "params", "latency_ms",
                                  "train_s", "epochs", "arch");
  for (const auto& t : trials) {
    absl::StrAppendFormat(
        &s, "%-5d %-10s %-9s %-9s %-9s %-9s %-10s %-8s %-7s %s\n", t.id(),
        TrialStateLabel(t.state()), MetricOr(t, "accuracy", *k4), MetricOr(t, "test_accuracy", *k4),
        HumanMetric(t, "macs"), HumanMetric(t, "params"),
        profile.empty() || t.latencies().empty() ? MetricOr(t, "latency_ms", *k3)
                                                 : TargetLatency(t, profile),
        MetricOr(t, "train_seconds", *k1), MetricOr(t, "epochs", *k0),
        // A compressed variant names its recipe and parent before its network.
        t.has_variant() ? absl::StrCat("[", t.variant().recipe().name(), " of ", t.variant().of(),
                                       "] ", ArchSummary(t.architecture()))
                        : ArchSummary(t.architecture()));
  }
  return s;
}

std::string ProtoJson(const google::protobuf::Message& message) {
  std::string out;
  google::protobuf::util::JsonPrintOptions o;
  o.add_whitespace = true;
  o.preserve_proto_field_names = true;
  (void)google::protobuf::util::MessageToJsonString(message, &out, o);
  return out;
}

}  // namespace nasforge::report
