// bench strategies: search strategies on a benchmark table, in process with the real strategy
// code (bench/strategy_bench.h), and with --peer optuna Optuna's TPE on the same table and
// protocol (bench/peers/optuna_tpe_peer.py). Figures, not tests.
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "bench/strategy_bench.h"
#include "cli/commands.h"
#include "cli/flags.h"
#include "cli/peer_script.h"
#include "core/jobspec.h"
#include "core/search_space.h"
#include "core/status.h"
#include "core/strategies/registry.h"
#include "core/strategies/strategy.h"
#include "core/tabular.h"

namespace nasforge::cli {
namespace {

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
  std::string low_column, stopping_rule;
  int low_epochs = 0, epochs = 0, eta = 0;
  std::vector<int> checkpoints;
  std::vector<std::string> strategies = {"random"};
  int queries = 100, runs = 100, population = 0, sample_size = 0, initial_samples = 0;
  int latency_observations = 1000;
  uint64_t seed = 1;
  std::string incumbent = "observed";
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
  j["candidates_per_run"] = r.candidates_mean;
  j["trained_to_the_end_per_run"] = r.promoted_mean;
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
                            "--checkpoints",    absl::StrJoin(checkpoints, ","),
                            "--incumbent",      o.incumbent},
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
  if (!o.low_column.empty()) t.report_columns.push_back(o.low_column);
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
  b.oracle_incumbent = o.incumbent == "oracle";
  b.checkpoints = o.checkpoints;
  if (!o.low_column.empty()) {
    if (o.low_epochs == 0 || o.epochs == 0) {
      return ReportError(c.io,
                         absl::InvalidArgumentError("--low-column needs --low-epochs and --epochs"),
                         "bench strategies --low-column");
    }
    b.low_epochs = o.low_epochs;
    b.epochs = o.epochs;
    b.early_stopping.set_rule(o.stopping_rule);
    b.early_stopping.set_eta(o.eta);
    b.early_stopping.set_keep_cost_front(false);
  }
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
    so.strategy = CanonicalStrategyName(name);
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
      if (!o.low_column.empty()) {
        c.io.out << absl::StrFormat("   %.0f candidates, %.1f trained to the end",
                                    r->candidates_mean, r->promoted_mean);
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

}  // namespace

void AddStrategiesBenchCommand(CLI::App& bench, CommandContext& c) {
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
  auto* low = cmd->add_option("--low-column", o->low_column,
                              "a cheap fidelity's column (e.g. 12-epoch validation): candidates "
                              "are screened there, the stopping rule promotes, and queries count "
                              "full trainings");
  cmd->add_option("--low-epochs", o->low_epochs, "epochs of the cheap fidelity")
      ->needs(low)
      ->check(IntAtLeast(1));
  cmd->add_option("--epochs", o->epochs, "epochs of a full training (the fitness column's)")
      ->needs(low)
      ->check(IntAtLeast(2));
  cmd->add_option("--stopping-rule", o->stopping_rule,
                  "early-stopping rule at the cheap fidelity (default: the strategy's; asha "
                  "for bohb, none otherwise)")
      ->needs(low);
  cmd->add_option("--eta", o->eta, "the rule's eta: the top 1/eta continue (default 3)")
      ->needs(low)
      ->check(IntAtLeast(0));
  cmd->add_option("--direction", o->direction,
                  "max: fitness is maximised; min: minimised (an error)")
      ->check(CLI::IsMember({"max", "min"}))
      ->capture_default_str();
  cmd->add_option("--incumbent", o->incumbent,
                  "observed: a run's result is the candidate it observed as best (the protocol); "
                  "oracle: the best table mean among those it evaluated (a diagnostic for noisy "
                  "tables: how good is what it found, had it known)")
      ->check(CLI::IsMember({"observed", "oracle"}))
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

}  // namespace nasforge::cli
