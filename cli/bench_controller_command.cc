// bench controller: the controller under load over real gRPC (bench/controller_bench.h), and the
// same workload through Optuna on the same store (--peer optuna) for the ratio.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_replace.h"
#include "bench/controller_bench.h"
#include "cli/commands.h"
#include "cli/flags.h"
#include "cli/peer_script.h"
#include "client/channel.h"

namespace nasforge::cli {
namespace {

struct ControllerBenchFlags {
  ControllerBenchOptions bench;
  bool remote = false, no_recovery = false, json = false;
  std::string peer, peer_script = "bench/peers/optuna_peer.py";
  int peer_trials = 0;
};

struct PeerResult {
  double trials_per_second = 0, seconds = 0;
  int trials = 0;
  std::string version;
};

// Runs the Optuna peer script on `store_url`; its one JSON line, or why it failed.
absl::StatusOr<PeerResult> RunOptunaPeer(const ControllerBenchFlags& f, int trials) {
  auto j = RunPeerScript(f.peer_script, "--peer-script",
                         {"--storage", f.bench.store_url, "--trials", absl::StrCat(trials),
                          "--seed", absl::StrCat(f.bench.seed)},
                         "is python3-optuna installed, and python3-psycopg2 for PostgreSQL?");
  if (!j.ok()) return j.status();
  if (!j->contains("trials_per_second")) {
    return absl::InternalError(absl::StrCat("the Optuna peer printed no figures: ", j->dump()));
  }
  return PeerResult{.trials_per_second = (*j)["trials_per_second"].get<double>(),
                    .seconds = (*j)["seconds"].get<double>(),
                    .trials = (*j)["trials"].get<int>(),
                    .version = j->value("optuna", "")};
}

nlohmann::json Latency(const LatencyFigures& l) {
  return {{"p50_ms", l.p50_ms}, {"p99_ms", l.p99_ms}, {"max_ms", l.max_ms}, {"calls", l.calls}};
}

int ControllerBench(CommandContext& c, ControllerBenchFlags f) {
  if (f.remote) {
    f.bench.controller = c.connection.controller;
    auto token = LoadToken(c.connection.token_file);
    if (!token.ok()) return ReportError(c.io, token.status(), "bench controller");
    f.bench.channel.token = *token;
    f.bench.channel.tls_ca = c.connection.tls_ca;
    f.bench.channel.tls_cert = c.connection.tls_cert;
    f.bench.channel.tls_key = c.connection.tls_key;
    f.bench.channel.insecure = c.connection.insecure;
  }
  // Without --store: a temporary SQLite file, removed afterwards. A store the user names is
  // never removed (the bench adds one job to it).
  const bool temporary_store = !f.remote && f.bench.store_url.empty();
  if (temporary_store) {
    f.bench.store_url = absl::StrCat("sqlite://", std::filesystem::temp_directory_path().string(),
                                     "/nasforge-bench-", getpid(), ".db");
  }
  if (temporary_store) std::filesystem::remove(f.bench.store_url.substr(9));
  f.bench.measure_recovery = !f.no_recovery;
  auto r = RunControllerBench(f.bench);
  if (!r.ok()) return ReportError(c.io, r.status(), "bench controller");
  nlohmann::json j = {{"store", r->store},
                      {"workers", r->workers},
                      {"batch", r->batch},
                      {"trial_ms", r->trial_ms},
                      {"trials", r->trials},
                      {"seconds", r->seconds},
                      {"trials_per_second", r->trials_per_second},
                      {"lease_trial", Latency(r->lease)},
                      {"report_results", Latency(r->report)},
                      {"empty_leases", r->empty_leases},
                      {"window", f.bench.window},
                      {"early_ms_per_trial", r->early_ms_per_trial},
                      {"late_ms_per_trial", r->late_ms_per_trial},
                      {"late_over_early", r->late_over_early},
                      {"pareto_query_ms", r->pareto_query_ms},
                      {"pareto_front_size", r->pareto_front_size},
                      {"scan_query_ms", r->scan_query_ms},
                      {"scan_front_size", r->scan_front_size},
                      {"scan_considered", r->scan_considered},
                      {"recovery_seconds", r->recovery_seconds},
                      {"rss_bytes_per_trial", r->rss_bytes_per_trial},
                      {"space", f.bench.space_file}};
  std::string text = absl::StrFormat(
      "controller bench: %d trials, %d workers, batch %d, %d ms per trial, store %s%s\n"
      "  throughput      %.0f trials/s (%.2f s)\n"
      "  LeaseTrial      p50 %.3f ms  p99 %.3f ms  max %.1f ms  (%d calls, %d empty)\n"
      "  ReportResults   p50 %.3f ms  p99 %.3f ms  max %.1f ms  (reports + next lease)\n"
      "  cost per trial  first %d: %.3f ms, last %d: %.3f ms (late/early %.2f)\n"
      "  QueryPareto     %.1f ms, front of %d (the job's objectives: its kept front)\n"
      "  QueryPareto     %.1f ms, front of %d of %d (3 objectives + a constraint: a scan)\n",
      r->trials, r->workers, r->batch, r->trial_ms, r->store,
      f.remote ? " (remote controller)" : " (in process, gRPC on loopback)", r->trials_per_second,
      r->seconds, r->lease.p50_ms, r->lease.p99_ms, r->lease.max_ms, r->lease.calls,
      r->empty_leases, r->report.p50_ms, r->report.p99_ms, r->report.max_ms, f.bench.window,
      r->early_ms_per_trial, f.bench.window, r->late_ms_per_trial, r->late_over_early,
      r->pareto_query_ms, r->pareto_front_size, r->scan_query_ms, r->scan_front_size,
      r->scan_considered);
  if (r->recovery_seconds >= 0) {
    absl::StrAppendFormat(&text, "  recovery        %.2f s to serving; %.0f bytes RSS per trial\n",
                          r->recovery_seconds, r->rss_bytes_per_trial);
  }
  if (f.peer == "optuna") {
    if (f.remote) {
      return ReportError(c.io,
                         absl::InvalidArgumentError("--peer needs the in-process controller "
                                                    "(its --store), not --remote"),
                         "bench controller");
    }
    const int trials = f.peer_trials > 0 ? f.peer_trials : std::min(r->trials, 1000);
    c.io.err << "level=info event=peer_started peer=optuna trials=" << trials << "\n";
    auto peer = RunOptunaPeer(f, trials);
    if (!peer.ok()) return ReportError(c.io, peer.status(), "bench controller --peer optuna");
    const double ratio = r->trials_per_second / std::max(1e-9, peer->trials_per_second);
    j["peer"] = {{"name", "optuna"},
                 {"version", peer->version},
                 {"trials", peer->trials},
                 {"seconds", peer->seconds},
                 {"trials_per_second", peer->trials_per_second},
                 {"nasforge_over_peer", ratio}};
    absl::StrAppendFormat(&text,
                          "  optuna %s      %.1f trials/s on the same store (%d trials, 1 thread): "
                          "nasforge %.1fx\n",
                          peer->version, peer->trials_per_second, peer->trials, ratio);
  }
  if (temporary_store) {
    std::filesystem::remove(f.bench.store_url.substr(9));
    std::filesystem::remove(f.bench.store_url.substr(9) + ".optuna");
  }
  c.io.out << (f.json ? j.dump(2) + "\n" : text);
  return kExitOk;
}

}  // namespace

void AddControllerBenchCommand(CLI::App& bench, CommandContext& c) {
  auto f = std::make_shared<ControllerBenchFlags>();
  ControllerBenchOptions& b = f->bench;
  CLI::App* cmd = bench.add_subcommand(
      "controller",
      "the controller under load over gRPC: trials/s, LeaseTrial and ReportResult latency, "
      "cost per trial early and late, recovery time; --peer optuna for the ratio");
  cmd->add_option("--store", b.store_url,
                  "store URL for the in-process controller (default: a temporary SQLite file)");
  cmd->add_flag("--remote", f->remote,
                "load the controller at --controller instead (token and TLS flags apply)");
  cmd->add_option("--workers", b.workers, "worker threads, one connection each")
      ->check(IntAtLeast(1))
      ->capture_default_str();
  cmd->add_option("--trials", b.trials, "trials to run")
      ->check(IntAtLeast(1))
      ->capture_default_str();
  cmd->add_option("--space", b.space_file, "search space (at least twice --trials architectures)")
      ->capture_default_str();
  cmd->add_option("--batch", b.batch,
                  "trials per worker call: lease this many, report them in one call that leases "
                  "the next batch (1: one call per trial)")
      ->check(CLI::Range(1, 64))
      ->capture_default_str();
  cmd->add_option("--trial-ms", b.trial_ms,
                  "simulated training: each worker waits about this long (uniform in [t/2, 3t/2]) "
                  "between lease and report "
                  "(latency below saturation, e.g. with 200 workers)")
      ->check(CLI::Range(0, 600000))
      ->capture_default_str();
  cmd->add_option("--window", b.window, "trials in the early and late cost windows")
      ->check(IntAtLeast(1))
      ->capture_default_str();
  cmd->add_option("--seed", b.seed, "the job's seed")->check(IntAtLeast(0))->capture_default_str();
  cmd->add_flag("--no-recovery", f->no_recovery, "skip the restart measurement");
  cmd->add_option("--peer", f->peer, "also run the workload through this peer on the same store")
      ->check(CLI::IsMember({"optuna"}));
  cmd->add_option("--peer-trials", f->peer_trials,
                  "trials for the peer (default: min(trials, 1000))")
      ->check(IntAtLeast(1));
  cmd->add_option("--peer-script", f->peer_script, "the Optuna peer")->capture_default_str();
  cmd->add_flag("--json", f->json, "print the figures as JSON");
  cmd->callback([&c, f] { c.exit_code = ControllerBench(c, *f); });
}

}  // namespace nasforge::cli
