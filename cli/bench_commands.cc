// bench early-stopping and bench pareto: figures, not tests. The two-fidelity comparison runs in
// process on a table; `early-stopping --job` runs a job twice on the controller, with and without
// its rule. `bench strategies` and `bench controller` have files of their own.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "bench/pareto_bench.h"
#include "bench/strategy_bench.h"
#include "bench/two_fidelity.h"
#include "cli/commands.h"
#include "cli/flags.h"
#include "cli/job_client.h"
#include "core/jobspec.h"
#include "core/status.h"
#include "core/strategies/strategy.h"
#include "core/table.h"
#include "core/tabular.h"

namespace nasforge::cli {
namespace {

std::string StrategyName(const std::string& name) { return CanonicalStrategyName(name); }

struct EarlyStoppingOptions {
  std::string job;  // live: a job spec run on the controller
  // On a table (successive halving vs full fidelity at equal cost):
  std::string table, low_column, high_column, report_column;
  TwoFidelityOptions two_fidelity;
  bool json = false;
};

int TwoFidelity(CommandContext& c, const EarlyStoppingOptions& o) {
  for (const auto& [flag, value] :
       {std::pair<const char*, const std::string&>{"--low-column", o.low_column},
        {"--high-column", o.high_column},
        {"--report-column", o.report_column}}) {
    if (value.empty()) {
      return ReportError(
          c.io, absl::InvalidArgumentError(absl::StrCat(flag, " is required with --table")),
          "bench early-stopping");
    }
  }
  auto table = Table::ReadCsv(o.table);
  if (!table.ok()) return ReportError(c.io, table.status(), "bench early-stopping --table");
  TwoFidelityOptions t = o.two_fidelity;
  t.low_column = o.low_column;
  t.high_column = o.high_column;
  t.report_column = o.report_column;
  t.low_strategy = StrategyName(t.low_strategy);
  auto r = RunTwoFidelityBench(*table, t);
  if (!r.ok()) return ReportError(c.io, r.status(), "bench early-stopping");
  auto summary = [](const RunSummary& s) {
    return nlohmann::json{{"mean", s.mean},
                          {"std", s.stddev},
                          {"cost_full_trainings", s.cost},
                          {"full_fidelity_evaluations", s.queries}};
  };
  nlohmann::json sh = summary(r->successive_halving);
  sh["low_fidelity_evaluations"] = t.low_count;
  sh["low_fidelity_strategy"] = t.low_strategy;
  nlohmann::json j = {{"table", o.table},
                      {"runs", t.runs},
                      {"report_column", t.report_column},
                      {"full_fidelity_random", summary(r->full_fidelity)},
                      {"successive_halving", sh},
                      {"best_accuracy_delta_pp", r->best_accuracy_delta_pp},
                      {"compute_ratio", r->compute_ratio},
                      {"compute_ratio_is_lower_bound", r->compute_ratio_is_lower_bound},
                      {"random_full_trainings_to_match", r->full_queries_to_match}};
  if (o.json) {
    c.io.out << j.dump(2) << "\n";
    return kExitOk;
  }
  c.io.out << absl::StrFormat(
      "%s over %d runs\n"
      "  full-fidelity random search, %d trainings:        %.2f +- %.2f\n"
      "  successive halving, %d low + %d full (%.1f):   %.2f +- %.2f\n"
      "  delta at equal cost: %+.2f pp; random search needs %d full trainings to match "
      "(compute ratio %s%.1fx)\n",
      t.report_column, t.runs, r->full_fidelity.queries, r->full_fidelity.mean,
      r->full_fidelity.stddev, t.low_count, t.promote, r->successive_halving.cost,
      r->successive_halving.mean, r->successive_halving.stddev, r->best_accuracy_delta_pp,
      r->full_queries_to_match, r->compute_ratio_is_lower_bound ? ">=" : "", r->compute_ratio);
  return kExitOk;
}

// One job's totals on the controller: training compute and best validation accuracy.
struct Outcome {
  std::string id;
  double train_seconds = 0, epochs = 0, best = 0, wall = 0;
  int stopped = 0, trials = 0;
};

absl::StatusOr<Outcome> RunJob(CommandContext& c, v1::JobService::Stub& stub, v1::JobSpec spec,
                               const std::string& label) {
  spec.set_name(spec.name() + "-" + label);
  v1::SubmitJobRequest req;
  *req.mutable_spec() = spec;
  req.set_idempotency_key(NewIdempotencyKey());
  NF_ASSIGN_OR_RETURN(v1::Job job, SubmitWithRetry(stub, req, c.io.err));
  c.io.err << label << ": job " << job.id() << "\n";
  const auto t0 = std::chrono::steady_clock::now();
  NF_RETURN_IF_ERROR(FollowJob(stub, job.id(), c.io.err, c.io.err_is_terminal).status());
  Outcome o;
  o.id = job.id();
  o.wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  NF_ASSIGN_OR_RETURN(auto trials, AllCandidates(stub, job.id()));
  for (const auto& t : trials) {
    auto m = [&](const char* k) {
      auto it = t.metrics().find(k);
      return it == t.metrics().end() ? 0.0 : it->second;
    };
    o.train_seconds += m("train_seconds");
    o.epochs += m("epochs");
    o.best = std::max(o.best, m("accuracy"));
    o.stopped += t.state() == v1::TRIAL_STOPPED;
    ++o.trials;
  }
  return o;
}

// The same job with and without early stopping, one after the other (so they do not share
// CPUs): training compute (sum of train_seconds and of epochs over all trials) and the best
// validation accuracy.
int Live(CommandContext& c, const EarlyStoppingOptions& o) {
  auto text = ReadInputFile(o.job, "--job");
  if (!text.ok()) return ReportError(c.io, text.status(), "bench early-stopping");
  auto spec = ParseJobSpecYaml(*text);
  if (!spec.ok()) return ReportError(c.io, spec.status(), "bench early-stopping --job " + o.job);
  const std::string rule = spec->early_stopping().rule();
  if (rule.empty() || rule == "none") {
    return ReportError(c.io,
                       absl::InvalidArgumentError("early_stopping.rule: the job must use a rule"),
                       "bench early-stopping --job " + o.job);
  }
  auto stub = ConnectJobService(c.connection);
  if (!stub.ok())
    return ReportError(c.io, stub.status(), "connecting to " + c.connection.controller);
  v1::JobSpec base = *spec;
  base.mutable_early_stopping()->set_rule("none");
  auto without = RunJob(c, **stub, base, "no-early-stopping");
  if (!without.ok()) return ReportError(c.io, without.status(), "bench early-stopping");
  auto with = RunJob(c, **stub, *spec, rule);
  if (!with.ok()) return ReportError(c.io, with.status(), "bench early-stopping");
  auto side = [](const Outcome& s) {
    return nlohmann::json{{"job", s.id},           {"trials", s.trials},
                          {"stopped", s.stopped},  {"train_seconds", s.train_seconds},
                          {"epochs", s.epochs},    {"best_accuracy", s.best},
                          {"wall_seconds", s.wall}};
  };
  const double compute_ratio = without->train_seconds / std::max(1e-9, with->train_seconds);
  const double epochs_ratio = without->epochs / std::max(1e-9, with->epochs);
  const double delta_pp = 100 * (with->best - without->best);
  if (o.json) {
    c.io.out << nlohmann::json{{"job_spec", o.job},
                               {"rule", rule},
                               {"without", side(*without)},
                               {"with", side(*with)},
                               {"compute_ratio", compute_ratio},
                               {"epochs_ratio", epochs_ratio},
                               {"best_accuracy_delta_pp", delta_pp}}
                    .dump(2)
             << "\n";
  } else {
    c.io.out << absl::StrFormat(
        "without early stopping: %d trials, %.0f epochs, %.0f train s, best %.4f\n"
        "with %s: %d trials (%d stopped), %.0f epochs, %.0f train s, best %.4f\n"
        "compute ratio %.2fx (epochs %.2fx), best accuracy delta %+.2f pp\n",
        without->trials, without->epochs, without->train_seconds, without->best, rule, with->trials,
        with->stopped, with->epochs, with->train_seconds, with->best, compute_ratio, epochs_ratio,
        delta_pp);
  }
  return kExitOk;
}

void AddEarlyStopping(CLI::App& bench, CommandContext& c) {
  auto o = std::make_shared<EarlyStoppingOptions>();
  TwoFidelityOptions& t = o->two_fidelity;
  CLI::App* cmd = bench.add_subcommand(
      "early-stopping",
      "--job: the job with and without its rule on the controller; --table: successive halving "
      "vs full-fidelity random search at equal cost");
  auto* job = cmd->add_option("--job", o->job, "job spec (YAML) with an early_stopping rule");
  auto* table = cmd->add_option("--table", o->table, "CSV table with two fidelities");
  job->excludes(table);
  const char* group = "With --table";
  cmd->add_option("--low-column", o->low_column, "fitness at the cheap fidelity")->group(group);
  cmd->add_option("--high-column", o->high_column, "fitness at full fidelity")->group(group);
  cmd->add_option("--report-column", o->report_column, "reported for the chosen candidate")
      ->group(group);
  cmd->add_option("--seeds-column", t.seeds_column, "per-seed full-fidelity fitness")->group(group);
  cmd->add_option("--low-cost", t.low_cost, "cost of a low-fidelity evaluation (full = 1)")
      ->check(PositiveReal())
      ->capture_default_str()
      ->group(group);
  cmd->add_option("--low-count", t.low_count, "candidates at the low fidelity")
      ->check(IntAtLeast(1))
      ->capture_default_str()
      ->group(group);
  cmd->add_option("--promote", t.promote, "the best of them trained at full fidelity")
      ->check(IntAtLeast(1))
      ->capture_default_str()
      ->group(group);
  cmd->add_option("--low-strategy", t.low_strategy, "random, rea (evolution) or bo")
      ->check(CLI::IsMember({"random", "rea", "evolution", "bo"}))
      ->capture_default_str()
      ->group(group);
  cmd->add_option("--key-column", t.key_column, "the architecture column")
      ->capture_default_str()
      ->group(group);
  cmd->add_option("--runs", t.runs, "independent runs")
      ->check(IntAtLeast(1))
      ->capture_default_str()
      ->group(group);
  cmd->add_option("--seed", t.seed, "first run's seed")
      ->check(IntAtLeast(0))
      ->capture_default_str()
      ->group(group);
  cmd->add_flag("--json", o->json, "print the figures as JSON");
  cmd->callback([&c, o] {
    if (o->job.empty() && o->table.empty()) {
      c.exit_code = ReportError(c.io, absl::InvalidArgumentError("--job or --table is required"),
                                "bench early-stopping");
      return;
    }
    c.exit_code = o->job.empty() ? TwoFidelity(c, *o) : Live(c, *o);
  });
}

void AddPareto(CLI::App& bench, CommandContext& c) {
  auto o = std::make_shared<ParetoBenchOptions>();
  auto json = std::make_shared<bool>(false);
  CLI::App* cmd = bench.add_subcommand(
      "pareto", "QueryPareto's front selection over N synthetic candidates with a constraint");
  cmd->add_option("--candidates", o->candidates, "candidates")
      ->check(IntAtLeast(1))
      ->capture_default_str();
  cmd->add_option("--objectives", o->objectives, "2: accuracy, macs; 3: and latency_ms")
      ->check(CLI::IsMember({2, 3}))
      ->capture_default_str();
  cmd->add_option("--seed", o->seed, "data seed")->check(IntAtLeast(0))->capture_default_str();
  cmd->add_flag("--json", *json, "print the figures as JSON");
  cmd->callback([&c, o, json] {
    auto r = RunParetoBench(*o);
    if (!r.ok()) {
      c.exit_code = ReportError(c.io, r.status(), "bench pareto");
      return;
    }
    if (*json) {
      c.io.out << nlohmann::json{{"candidates", r->candidates},
                                 {"objectives", o->objectives},
                                 {"considered", r->considered},
                                 {"front", r->front},
                                 {"query_ms", r->query_ms}}
                      .dump(2)
               << "\n";
    } else {
      c.io.out << absl::StrFormat(
          "%d candidates, %d objectives, one constraint: %d met it, front of %d in %.1f ms "
          "(median of %d)\n",
          r->candidates, o->objectives, r->considered, r->front, r->query_ms, o->repeats);
    }
    c.exit_code = kExitOk;
  });
}

}  // namespace

void AddBenchCommands(CLI::App& app, CommandContext& c) {
  CLI::App* bench = app.add_subcommand("bench", "benchmarks that print figures");
  bench->require_subcommand(1);
  AddStrategiesBenchCommand(*bench, c);
  AddEarlyStopping(*bench, c);
  AddControllerBenchCommand(*bench, c);
  AddPareto(*bench, c);
}

}  // namespace nasforge::cli
