// bench strategies and bench early-stopping: figures, not tests. Strategies and the two-fidelity
// comparison run in process on a table; `early-stopping --job` runs a job twice on the
// controller, with and without its rule.
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
#include "cli/peer_script.h"
#include "core/jobspec.h"
#include "core/search_space.h"
#include "core/status.h"
#include "core/strategies/registry.h"
#include "core/strategies/strategy.h"
#include "core/table.h"
#include "core/tabular.h"

namespace nasforge::cli {
namespace {

std::string StrategyName(const std::string& name) { return CanonicalStrategyName(name); }

// A --strategy value: a registered strategy (or "rea"); the error lists them.
CLI::Validator RegisteredStrategy() {
  return CLI::Validator(
      [](std::string& v) -> std::string {
        if (::nasforge::Strategies().Find(CanonicalStrategyName(v)) != nullptr) return "";
        return absl::StrCat("strategy ", ::nasforge::Strategies().Unknown(v), " (or rea)");
      },
      "STRATEGY");
}

struct StrategiesOptions {
  std::string table, key_column = "arch_str", fitness_column, report_column, seeds_column, space;
  std::string direction = "max", peer, peer_script = "bench/peers/optuna_tpe_peer.py";
  std::vector<int> checkpoints;
  std::vector<std::string> strategies = {"random"};
  int queries = 100, runs = 100, population = 0, sample_size = 0, initial_samples = 0;
  int latency_observations = 1000;
  uint64_t seed = 1;
  bool multi_objective = false, json = false;
};

nlohmann::json StrategyJson(const std::string& name, const StrategyBenchResult& r,
                            bool multi_objective, int latency_observations, double suggest_ms) {
  nlohmann::json j;
  j["strategy"] = name;
  j["checkpoints"] = nlohmann::json::array();
  for (const auto& c : r.checkpoints) {
    j["checkpoints"].push_back({{"queries", c.queries},
                                {"mean", c.mean},
                                {"stddev", c.stddev},
                                {"stderr", c.stderr_mean},
                                {"regret", c.regret},
                                {"hypervolume", c.hypervolume}});
  }
  j["best_so_far_curve"] = r.curve;
  j["ask_ms_mean"] = r.ask_ms_mean;
  j["ask_ms_p99"] = r.ask_ms_p99;
  j["suggest_ms_at_observations"] = {{"observations", latency_observations}, {"ms", suggest_ms}};
  j["objectives"] = multi_objective ? "accuracy:max,params:min" : "accuracy:max";
  j["hypervolume_reference"] = {{"fitness", r.hv_reference_accuracy},
                                {"params_m", r.hv_reference_params}};
  return j;
}

// Optuna's TPE on the same table and protocol, its parameters as categorical choices and as
// ordered indices (bench/peers/optuna_tpe_peer.py); the JSON of each, or why the peer failed.
absl::StatusOr<nlohmann::json> OptunaTpe(const StrategiesOptions& o, const StrategyBenchOptions& b,
                                         const std::vector<int>& checkpoints) {
  nlohmann::json out = nlohmann::json::array();
  for (const char* mode : {"categorical", "ordinal"}) {
    auto j = RunPeerScript(o.peer_script, "--peer-script",
                           {"--table",          o.table,
                            "--space",          o.space,
                            "--fitness-column", o.fitness_column,
                            "--seeds-column",   o.seeds_column,
                            "--report-column",  o.report_column,
                            "--direction",      o.direction,
                            "--queries",        absl::StrCat(b.queries),
                            "--runs",           absl::StrCat(b.runs),
                            "--seed",           absl::StrCat(b.seed),
                            "--mode",           mode,
                            "--checkpoints",    absl::StrJoin(checkpoints, ",")},
                           "is python3-optuna installed?");
    if (!j.ok()) return j.status();
    out.push_back(*j);
  }
  return out;
}

int Strategies(CommandContext& c, const StrategiesOptions& o) {
  TabularOptions t;
  t.table = o.table;
  t.key_column = o.key_column;
  t.fitness_column = o.fitness_column;
  t.report_columns = {o.report_column};
  t.seeds_column = o.seeds_column;
  if (!o.space.empty()) {
    // A space whose kind has no tables (parameters only, or an architecture with parameters
    // in a table of parameter columns): rows are keyed by the parameter columns.
    v1::SearchSpace probe;
    auto text = ReadInputFile(o.space, "--space");
    if (text.ok() && YamlToMessage(*text, &probe).ok() && probe.parameters_size() > 0 &&
        !HasTables(probe)) {
      t.key_column.clear();
    }
  }
  auto oracle = TabularOracle::Load(t);
  if (!oracle.ok()) return ReportError(c.io, oracle.status(), "bench strategies --table");
  StrategyBenchOptions b;
  b.queries = o.queries;
  b.runs = o.runs;
  b.seed = o.seed;
  b.multi_objective = o.multi_objective;
  b.strategy_options.set_population(o.population);
  b.strategy_options.set_sample_size(o.sample_size);
  b.strategy_options.set_initial_samples(o.initial_samples);
  b.minimize = o.direction == "min";
  b.checkpoints = o.checkpoints;
  if (!o.space.empty()) {
    auto text = ReadInputFile(o.space, "--space");
    absl::Status st = text.ok() ? YamlToMessage(*text, &b.space) : text.status();
    if (!st.ok()) return ReportError(c.io, st, "bench strategies --space " + o.space);
  }
  nlohmann::json out = {{"table", t.table},
                        {"fitness_column", t.fitness_column},
                        {"report_column", o.report_column},
                        {"seeds_column", t.seeds_column},
                        {"queries", b.queries},
                        {"runs", b.runs},
                        {"multi_objective", b.multi_objective},
                        {"strategies", nlohmann::json::array()}};
  for (const std::string& name : o.strategies) {
    StrategyBenchOptions so = b;
    so.strategy = StrategyName(name);
    so.multi_objective = b.multi_objective || so.strategy == "nsga2";  // nsga2 needs two
    auto r = RunStrategyBench(*oracle, so);
    if (!r.ok()) return ReportError(c.io, r.status(), "bench strategies --strategy " + name);
    double suggest_ms = -1;
    if (o.latency_observations > 0) {
      auto l = SuggestionLatencyMs(*oracle, so, o.latency_observations, 40);
      if (l.ok()) suggest_ms = *l;
    }
    out["strategies"].push_back(
        StrategyJson(name, *r, so.multi_objective, o.latency_observations, suggest_ms));
    if (!o.json) {
      c.io.out << absl::StrFormat("%-10s", name);
      for (const auto& cp : r->checkpoints) {
        c.io.out << absl::StrFormat("  @%d: %.6g +- %.2g (regret %.3g, hv %.3f)", cp.queries,
                                    cp.mean, cp.stderr_mean, cp.regret, cp.hypervolume);
      }
      c.io.out << absl::StrFormat("   ask %.2f ms, at %d observations %.2f ms\n", r->ask_ms_mean,
                                  o.latency_observations, suggest_ms)
               << std::flush;
    }
  }
  if (o.peer == "optuna") {
    if (o.space.empty()) {
      return ReportError(c.io, absl::InvalidArgumentError("--peer optuna needs --space"),
                         "bench strategies --peer");
    }
    std::vector<int> cps = o.checkpoints;
    if (cps.empty()) cps = {25, 50, 100};
    c.io.err << "level=info event=peer_started peer=optuna-tpe runs=" << b.runs << "\n";
    auto peer = OptunaTpe(o, b, cps);
    if (!peer.ok()) return ReportError(c.io, peer.status(), "bench strategies --peer optuna");
    out["peers"] = *peer;
    if (!o.json) {
      for (const auto& p : *peer) {
        c.io.out << absl::StrFormat("%-10s",
                                    absl::StrCat("tpe-", p.value("mode", "").substr(0, 3)));
        for (const auto& cp : p["checkpoints"]) {
          c.io.out << absl::StrFormat("  @%d: %.6g +- %.2g (regret %.3g)", cp["queries"].get<int>(),
                                      cp["mean"].get<double>(), cp["stderr"].get<double>(),
                                      cp["regret"].get<double>());
        }
        c.io.out << "   optuna " << p.value("optuna", "") << "\n";
      }
    }
  }
  if (o.json) c.io.out << out.dump(1) << "\n";
  return kExitOk;
}

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

void AddStrategies(CLI::App& bench, CommandContext& c) {
  auto o = std::make_shared<StrategiesOptions>();
  CLI::App* cmd = bench.add_subcommand(
      "strategies", "search strategies on a benchmark table: best value after N queries");
  cmd->add_option("--table", o->table, "CSV table, one row per architecture")->required();
  cmd->add_option("--fitness-column", o->fitness_column, "what the strategies see")->required();
  cmd->add_option("--report-column", o->report_column, "what is reported for the best")->required();
  cmd->add_option("--seeds-column", o->seeds_column,
                  "';'-separated per-seed fitness: one seed per query (a noisy run)");
  cmd->add_option("--key-column", o->key_column,
                  "the architecture column (a --space of parameters only: rows keyed by them)")
      ->capture_default_str();
  cmd->add_option("--direction", o->direction,
                  "max: fitness is maximised; min: minimised (an error)")
      ->check(CLI::IsMember({"max", "min"}))
      ->capture_default_str();
  cmd->add_option("--checkpoints", o->checkpoints, "queries at which to summarise, comma-separated")
      ->delimiter(',')
      ->check(IntAtLeast(1));
  cmd->add_option("--peer", o->peer,
                  "also run optuna (TPE, categorical and ordinal) on the same table and protocol")
      ->check(CLI::IsMember({"optuna"}));
  cmd->add_option("--peer-script", o->peer_script, "the Optuna TPE peer")->capture_default_str();
  cmd->add_option(
         "--strategy", o->strategies,
         absl::StrCat("strategies to run, comma-separated: ",
                      absl::StrJoin(::nasforge::Strategies().Names(), ", "), " (rea = evolution)"))
      ->delimiter(',')
      ->check(RegisteredStrategy())
      ->capture_default_str();
  cmd->add_option("--queries", o->queries, "queries per run")
      ->check(IntAtLeast(1))
      ->capture_default_str();
  cmd->add_option("--runs", o->runs, "independent runs")
      ->check(IntAtLeast(1))
      ->capture_default_str();
  cmd->add_option("--seed", o->seed, "first run's seed")
      ->check(IntAtLeast(0))
      ->capture_default_str();
  cmd->add_flag("--multi-objective", o->multi_objective, "accuracy:max and params:min");
  cmd->add_option("--population", o->population, "strategy population (0: its default)")
      ->check(IntAtLeast(0));
  cmd->add_option("--sample-size", o->sample_size, "tournament size (0: default)")
      ->check(IntAtLeast(0));
  cmd->add_option("--initial-samples", o->initial_samples, "random samples first (0: default)")
      ->check(IntAtLeast(0));
  cmd->add_option("--latency-observations", o->latency_observations,
                  "suggestion time measured after this many results (0: skip)")
      ->check(IntAtLeast(0))
      ->capture_default_str();
  cmd->add_option("--space", o->space, "search space (default: the NAS-Bench-201 cell space)");
  cmd->add_flag("--json", o->json, "print the figures as JSON");
  cmd->callback([&c, o] { c.exit_code = Strategies(c, *o); });
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
  AddStrategies(*bench, c);
  AddEarlyStopping(*bench, c);
  AddControllerBenchCommand(*bench, c);
  AddPareto(*bench, c);
}

}  // namespace nasforge::cli
