// nasforge: the command-line client of JobService.
// Why this file is over 500 lines: argument parsing, formatting, offline commands and every RPC
// command still live together; issue 12 (the house) moves them to cli/ with one file per concern.
//   nasforge [--controller HOST:PORT] submit JOB.yaml [--watch] [--idempotency-key K]
//   nasforge status JOB | watch JOB | cancel JOB | jobs
//   nasforge pareto JOB [--objectives accuracy:max,macs:min] [--where "latency_ms<=5"] [--json]
//   nasforge candidates JOB [--json]
#include <google/protobuf/util/json_util.h>
#include <grpcpp/grpcpp.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "bench/strategy_bench.h"
#include "bench/two_fidelity.h"
#include "client/channel.h"
#include "controller/auth.h"
#include "core/cost.h"
#include "core/jobspec.h"
#include "core/pareto.h"
#include "core/search_space.h"
#include "core/status.h"
#include "core/table.h"
#include "core/tabular.h"
#include "nasforge/v1/nasforge.grpc.pb.h"

namespace nasforge {
namespace {

constexpr char kUsage[] =
    "usage: nasforge [--controller HOST:PORT] [--token-file FILE] [--tls-ca CA.pem\n"
    "                [--tls-cert CERT.pem --tls-key KEY.pem] | --insecure] COMMAND ...\n"
    "  submit JOB.yaml [--watch] [--idempotency-key KEY]   submit a job (prints its id)\n"
    "  status JOB                                         job state and counts\n"
    "  watch JOB                                          live progress until the job ends\n"
    "  pareto JOB [--objectives M:max,M:min] [--where \"M<=V,...\"] [--hardware-profile P]\n"
    "             [--limit N] [--include-stopped] [--json] Pareto-optimal candidates\n"
    "  candidates JOB [--json]                            every candidate of the job\n"
    "  cancel JOB                                         cancel a job\n"
    "  jobs [--json]                                      list jobs, newest first\n"
    "  space describe SPACE.yaml                          choices and size of a search space\n"
    "  space sample SPACE.yaml [-n N] [--seed S] [--json] valid architectures (YAML stream)\n"
    "  cost ARCH.yaml [--resolution N] [--layers] [--json] analytic MACs and params\n"
    "  bench strategies --table CSV --fitness-column C --report-column C [--seeds-column C]\n"
    "        [--strategy random,rea,bo,nsga2] [--queries 100] [--runs 100] [--seed S]\n"
    "        [--multi-objective] [--population P] [--sample-size S] [--initial-samples N]\n"
    "        [--space SPACE.yaml] [--key-column arch_str] [--json]   strategies on a table\n"
    "  bench early-stopping --job JOB.yaml [--json]   the job with and without its early-stopping\n"
    "        rule on the running controller: compute_ratio, best_accuracy_delta_pp\n"
    "  bench early-stopping --table CSV --low-column C --high-column C --report-column C\n"
    "        [--seeds-column C] [--low-cost 0.06] [--low-count 1200] [--promote 28]\n"
    "        [--low-strategy random|rea|bo] [--key-column arch_str]\n"
    "        [--runs 100] [--seed S] [--json]   successive halving vs full fidelity, equal cost\n"
    "  token create --file TOKENS --name NAME --role read|submit|admin|worker\n"
    "                                  add a token (printed once) to the controller's token file\n"
    "  token list --file TOKENS        names, roles and creation times (never the tokens)\n"
    "  token revoke --file TOKENS --name NAME   the controller refuses it within a second\n"
    "--controller defaults to $NASFORGE_CONTROLLER or 127.0.0.1:50051; the bearer token is read\n"
    "from --token-file or $NASFORGE_TOKEN (never from the command line).\n";

struct Args {
  std::vector<std::string> positional;
  std::map<std::string, std::string> flags;
  bool Has(const std::string& k) const { return flags.count(k) > 0; }
  std::string Get(const std::string& k, const std::string& def = "") const {
    auto it = flags.find(k);
    return it == flags.end() ? def : it->second;
  }
};

const std::set<std::string> kBoolFlags = {"json",   "watch",           "include-stopped", "help",
                                          "layers", "multi-objective", "insecure"};

Args Parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    std::string s = argv[i];
    if (s.size() == 2 && s[0] == '-' && s[1] != '-' && i + 1 < argc) {
      a.flags[s.substr(1)] = argv[++i];
    } else if (s.rfind("--", 0) == 0) {
      std::string k = s.substr(2), v;
      auto eq = k.find('=');
      if (eq != std::string::npos) {
        v = k.substr(eq + 1);
        k = k.substr(0, eq);
      } else if (!kBoolFlags.count(k) && i + 1 < argc) {
        v = argv[++i];
      }
      for (auto& c : k) c = c == '_' ? '-' : c;
      a.flags[k] = v;
    } else {
      a.positional.push_back(s);
    }
  }
  return a;
}

// The channel to the controller: token from --token-file or $NASFORGE_TOKEN, TLS from --tls-ca
// (or $NASFORGE_TLS_CA), --tls-cert/--tls-key for mutual TLS, --insecure for plain text beyond
// loopback.
absl::StatusOr<std::shared_ptr<grpc::Channel>> Connect(const Args& a, const std::string& target) {
  auto token = LoadToken(a.Get("token-file"));
  if (!token.ok()) return token.status();
  ChannelOptions o;
  o.target = target;
  o.token = *token;
  const char* ca_env = getenv("NASFORGE_TLS_CA");
  o.tls_ca = a.Get("tls-ca", ca_env ? ca_env : "");
  o.tls_cert = a.Get("tls-cert");
  o.tls_key = a.Get("tls-key");
  o.insecure = a.Has("insecure");
  return OpenChannel(std::move(o));
}

int Fail(const grpc::Status& s, const std::string& what) {
  std::cerr << "error: " << what << ": " << s.error_message() << " ("
            << (s.error_code() == grpc::StatusCode::UNAVAILABLE
                    ? "UNAVAILABLE: is nasforge-controller running at --controller?"
                    : absl::StrCat("code ", static_cast<int>(s.error_code())))
            << ")\n";
  return s.error_code() == grpc::StatusCode::INVALID_ARGUMENT ? 2 : 1;
}

std::string Json(const google::protobuf::Message& m) {
  std::string out;
  google::protobuf::util::JsonPrintOptions o;
  o.add_whitespace = true;
  o.preserve_proto_field_names = true;
  (void)google::protobuf::util::MessageToJsonString(m, &out, o);
  return out;
}

std::string Human(double v) {
  if (v >= 1e9) return absl::StrFormat("%.3fG", v / 1e9);
  if (v >= 1e6) return absl::StrFormat("%.3fM", v / 1e6);
  if (v >= 1e3) return absl::StrFormat("%.1fK", v / 1e3);
  return absl::StrFormat("%.4g", v);
}

std::string Duration(double s) {
  if (s < 0) return "-";
  int t = static_cast<int>(s + 0.5);
  if (t >= 3600) return absl::StrFormat("%dh%02dm", t / 3600, t / 60 % 60);
  if (t >= 60) return absl::StrFormat("%dm%02ds", t / 60, t % 60);
  return absl::StrFormat("%ds", t);
}

std::string Short(const std::string& state) {
  std::string s = state;
  for (const char* p : {"TRIAL_", "JOB_"}) {
    if (s.rfind(p, 0) == 0) s = s.substr(strlen(p));
  }
  for (auto& c : s) c = static_cast<char>(std::tolower(c));
  return s;
}

double Seconds(const google::protobuf::Timestamp& t) { return t.seconds() + t.nanos() / 1e9; }

std::string Bar(const v1::Job& job, double now) {
  const auto& c = job.counts();
  int total = std::max(1, job.spec().budget().max_trials());
  int done = c.succeeded() + c.stopped() + c.failed() + c.cancelled();
  int width = 24, fill = std::min(width, done * width / total);
  double elapsed =
      (job.has_end_time() ? Seconds(job.end_time()) : now) - Seconds(job.create_time());
  double eta = done > 0 && done < total ? elapsed / done * (total - done) : -1;
  std::string best =
      job.has_best_objective()
          ? absl::StrFormat("%s %.4g", job.spec().objectives(0).metric(), job.best_objective())
          : "-";
  return absl::StrFormat("[%s%s] %d/%d done  %d running  %d failed  best %s  elapsed %s  eta %s",
                         std::string(fill, '#'), std::string(width - fill, '.'), done, total,
                         c.running(), c.failed(), best, Duration(elapsed), Duration(eta));
}

void PrintJob(const v1::Job& j) {
  const auto& c = j.counts();
  std::cout << "job        " << j.id()
            << (j.spec().name().empty() ? "" : "  (" + j.spec().name() + ")") << "\nstate      "
            << Short(v1::JobState_Name(j.state())) << "\nstrategy   " << j.spec().strategy().name()
            << ", seed " << j.spec().budget().seed() << "\ntrials     " << c.succeeded()
            << " succeeded, " << c.stopped() << " stopped, " << c.running() << " running, "
            << c.queued() << " queued, " << c.failed() << " failed, " << c.cancelled()
            << " cancelled (budget " << j.spec().budget().max_trials() << ")"
            << "\nrejected   " << c.rejected_by_cost() << " candidates over a cost bound\n";
  if (j.has_best_objective()) {
    std::cout << "best       " << j.spec().objectives(0).metric() << " = " << j.best_objective()
              << "\n";
  }
  if (!j.error().empty()) std::cout << "note       " << j.error() << "\n";
}

std::string Metric(const v1::Trial& t, const std::string& k) {
  auto it = t.metrics().find(k);
  return it == t.metrics().end() ? "-" : Human(it->second);
}

// One line per architecture: the choices that differ between candidates.
void PrintTrials(const google::protobuf::RepeatedPtrField<v1::Trial>& trials) {
  std::printf("%-5s %-10s %-9s %-9s %-9s %-9s %-10s %-8s %-7s %s\n", "trial", "state", "val_acc",
              "test_acc", "macs", "params", "latency_ms", "train_s", "epochs", "arch");
  for (const auto& t : trials) {
    auto f = [&](const char* k, const char* fmt) -> std::string {
      auto it = t.metrics().find(k);
      if (it == t.metrics().end()) return "-";
      return absl::StrFormat(*absl::ParsedFormat<'f'>::New(fmt), it->second);
    };
    std::string arch = ArchSummary(t.architecture());
    std::printf("%-5lld %-10s %-9s %-9s %-9s %-9s %-10s %-8s %-7s %s\n",
                static_cast<long long>(t.id()), Short(v1::TrialState_Name(t.state())).c_str(),
                f("accuracy", "%.4f").c_str(), f("test_accuracy", "%.4f").c_str(),
                Metric(t, "macs").c_str(), Metric(t, "params").c_str(),
                f("latency_ms", "%.3f").c_str(), f("train_seconds", "%.1f").c_str(),
                f("epochs", "%.0f").c_str(), arch.c_str());
  }
}

int Watch(v1::JobService::Stub& stub, const std::string& id, std::ostream& out = std::cout) {
  grpc::ClientContext ctx;
  v1::WatchJobRequest req;
  req.set_job_id(id);
  auto reader = stub.WatchJob(&ctx, req);
  v1::JobEvent e;
  bool tty = isatty(&out == &std::cout ? STDOUT_FILENO : STDERR_FILENO);
  v1::Job last;
  auto last_print = std::chrono::steady_clock::now() - std::chrono::hours(1);
  while (reader->Read(&e)) {
    last = e.job();
    double now =
        std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
    auto n = std::chrono::steady_clock::now();
    bool finished = e.kind() == "job_finished" || e.kind() == "trial_finished";
    if (tty) {
      out << "\r\033[K" << Bar(last, now) << std::flush;
    } else if (finished || n - last_print > std::chrono::seconds(10)) {
      out << Bar(last, now) << "\n" << std::flush;
      last_print = n;
    }
  }
  if (tty) out << "\n";
  grpc::Status s = reader->Finish();
  if (!s.ok()) return Fail(s, "watch");
  out << "job " << id << " " << Short(v1::JobState_Name(last.state())) << "\n";
  return last.state() == v1::JOB_SUCCEEDED ? 0 : 3;
}

std::string ReadFile(const std::string& path) {
  std::ifstream f(path);
  if (!f) {
    std::cerr << "error: cannot read '" << path << "'\n";
    std::exit(2);
  }
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// Commands that need no controller: search spaces and the cost model.
int Offline(const Args& a) {
  const std::string& cmd = a.positional[0];
  if (cmd == "cost") {
    if (a.positional.size() < 2) {
      std::cerr << "error: cost needs an architecture file\n";
      return 2;
    }
    v1::Architecture arch;
    absl::Status st = YamlToMessage(ReadFile(a.positional[1]), &arch);
    if (st.ok()) st = ValidateArchitecture(arch, "architecture");
    if (st.ok() && a.Has("resolution")) {
      int r = 0;
      if (!absl::SimpleAtoi(a.Get("resolution"), &r)) {
        st = FieldError("--resolution", "'" + a.Get("resolution") + "' is not an integer");
      } else {
        st = SetResolution(&arch, r);
        if (st.ok()) st = ValidateArchitecture(arch, "architecture");
      }
    }
    if (!st.ok()) {
      std::cerr << "error: " << a.positional[1] << ": " << st.message() << "\n";
      return 2;
    }
    ArchCost c = ComputeCost(arch);
    const InputShape in = ArchInputShape(arch);
    if (a.Has("json")) {
      std::cout << absl::StrFormat(
          "{\"macs\": %d, \"params\": %d, \"kind\": \"%s\", \"resolution\": %d, "
          "\"hash\": \"%s\"}\n",
          c.macs, c.params, KindName(arch), arch.has_mlp() ? 0 : in.height, ArchHash(arch));
    } else {
      if (a.Has("layers")) {
        std::printf("%-32s %-6s %6s %6s %3s %3s %6s %5s %14s %12s\n", "layer", "kind", "in", "out",
                    "k", "s", "groups", "size", "macs", "params");
        for (const auto& l : c.layers) {
          std::printf("%-32s %-6s %6d %6d %3d %3d %6d %5d %14lld %12lld\n", l.name.c_str(),
                      l.kind.c_str(), l.in_channels, l.out_channels, l.kernel, l.stride, l.groups,
                      l.out_size, static_cast<long long>(l.macs), static_cast<long long>(l.params));
        }
      }
      std::cout << "kind   " << KindName(arch) << "\nmacs   " << c.macs << " (" << Human(c.macs)
                << ")\nparams " << c.params << " (" << Human(c.params) << ")\nhash   "
                << ArchHash(arch) << "\n";
    }
    return 0;
  }
  if (a.positional.size() < 3 || (a.positional[1] != "describe" && a.positional[1] != "sample")) {
    std::cerr << "error: use 'space describe SPACE.yaml' or 'space sample SPACE.yaml'\n";
    return 2;
  }
  v1::SearchSpace space;
  absl::Status st = YamlToMessage(ReadFile(a.positional[2]), &space);
  if (st.ok()) st = ValidateSearchSpace(space, "search_space");
  if (!st.ok()) {
    std::cerr << "error: " << a.positional[2] << ": " << st.message() << "\n";
    return 2;
  }
  if (a.positional[1] == "describe") {
    std::cout << "kind: " << KindName(space) << "\n";
    std::cout << "decisions:\n";
    for (const auto& d : SpaceDecisions(space)) {
      std::cout << "  " << d.name << ": " << d.choices << " choice" << (d.choices == 1 ? "" : "s")
                << "\n";
    }
    std::cout << "size: " << SpaceSize(space) << " architectures\n";
    std::cout << "space:\n" << Json(space) << "\n";
    return 0;
  }
  int n = a.Has("n") ? std::atoi(a.Get("n").c_str()) : 1;
  uint64_t seed = a.Has("seed") ? std::strtoull(a.Get("seed").c_str(), nullptr, 10) : 0;
  for (int i = 0; i < n; ++i) {
    v1::Architecture arch = SampleArchitecture(space, MixSeed(seed, i));
    ArchCost c = ComputeCost(arch);
    if (a.Has("json")) {
      std::string json;
      google::protobuf::util::JsonPrintOptions o;
      o.preserve_proto_field_names = true;
      (void)google::protobuf::util::MessageToJsonString(arch, &json, o);
      std::cout << absl::StrFormat(
          "{\"hash\": \"%s\", \"macs\": %d, \"params\": %d, \"architecture\": %s}\n",
          ArchHash(arch), c.macs, c.params, json);
    } else {
      // A YAML stream: each document is an architecture file for `nasforge cost`.
      std::cout << absl::StrFormat("--- # hash %s, macs %d, params %d\n", ArchHash(arch), c.macs,
                                   c.params)
                << MessageToYaml(arch) << "\n";
    }
  }
  return 0;
}

// Benchmarks that run in process on a table: no controller needed.
int BenchStrategies(const Args& a) {
  for (const char* required : {"table", "fitness-column", "report-column"}) {
    if (a.Get(required).empty()) {
      std::cerr << "error: bench strategies needs --" << required << "\n";
      return 2;
    }
  }
  TabularOptions t;
  t.table = a.Get("table");
  t.key_column = a.Get("key-column", "arch_str");
  t.fitness_column = a.Get("fitness-column");
  t.report_columns = {a.Get("report-column")};
  t.seeds_column = a.Get("seeds-column");
  auto oracle = TabularOracle::Load(t);
  if (!oracle.ok()) {
    std::cerr << "error: " << oracle.status().message() << "\n";
    return 2;
  }
  StrategyBenchOptions o;
  auto int_flag = [&](const char* name, int def) {
    return a.Has(name) ? std::atoi(a.Get(name).c_str()) : def;
  };
  o.queries = int_flag("queries", 100);
  o.runs = int_flag("runs", 100);
  o.seed = a.Has("seed") ? std::strtoull(a.Get("seed").c_str(), nullptr, 10) : 1;
  o.multi_objective = a.Has("multi-objective");
  o.strategy_options.set_population(int_flag("population", 0));
  o.strategy_options.set_sample_size(int_flag("sample-size", 0));
  o.strategy_options.set_initial_samples(int_flag("initial-samples", 0));
  if (a.Has("space")) {
    absl::Status st = YamlToMessage(ReadFile(a.Get("space")), &o.space);
    if (!st.ok()) {
      std::cerr << "error: " << a.Get("space") << ": " << st.message() << "\n";
      return 2;
    }
  }
  const int latency_obs = int_flag("latency-observations", 1000);
  nlohmann::json out = nlohmann::json::object();
  out["table"] = t.table;
  out["fitness_column"] = t.fitness_column;
  out["report_column"] = t.report_columns[0];
  out["seeds_column"] = t.seeds_column;
  out["queries"] = o.queries;
  out["runs"] = o.runs;
  out["multi_objective"] = o.multi_objective;
  out["strategies"] = nlohmann::json::array();
  for (const std::string& name :
       std::vector<std::string>(absl::StrSplit(a.Get("strategy", "random"), ','))) {
    o.strategy = name == "rea" ? "evolution" : name;
    StrategyBenchOptions so = o;
    so.multi_objective = o.multi_objective || o.strategy == "nsga2";  // nsga2 needs two
    auto r = RunStrategyBench(*oracle, so);
    if (!r.ok()) {
      std::cerr << "error: " << name << ": " << r.status().message() << "\n";
      return 2;
    }
    double suggest_ms = -1;
    if (latency_obs > 0) {
      auto l = SuggestionLatencyMs(*oracle, so, latency_obs, 40);
      if (l.ok()) suggest_ms = *l;
    }
    nlohmann::json j;
    j["strategy"] = name;
    j["checkpoints"] = nlohmann::json::array();
    for (const auto& c : r->checkpoints) {
      nlohmann::json cj = {{"queries", c.queries},
                           {"mean", c.mean},
                           {"stddev", c.stddev},
                           {"hypervolume", c.hypervolume}};
      j["checkpoints"].push_back(cj);
    }
    j["best_so_far_curve"] = r->curve;
    j["ask_ms_mean"] = r->ask_ms_mean;
    j["ask_ms_p99"] = r->ask_ms_p99;
    j["suggest_ms_at_observations"] = {{"observations", latency_obs}, {"ms", suggest_ms}};
    j["objectives"] = so.multi_objective ? "accuracy:max,params:min" : "accuracy:max";
    j["hypervolume_reference"] = {{"fitness", r->hv_reference_accuracy},
                                  {"params_m", r->hv_reference_params}};
    out["strategies"].push_back(j);
    if (!a.Has("json")) {
      std::printf("%-10s", name.c_str());
      for (const auto& c : r->checkpoints) {
        std::printf("  @%d: %.2f +- %.2f", c.queries, c.mean, c.stddev);
        std::printf(" (hv %.3f)", c.hypervolume);
      }
      std::printf("   ask %.2f ms, at %d observations %.2f ms\n", r->ask_ms_mean, latency_obs,
                  suggest_ms);
      std::fflush(stdout);
    }
  }
  if (a.Has("json")) std::cout << out.dump(1) << "\n";
  return 0;
}

// Every trial of a job (all pages).
absl::StatusOr<std::vector<v1::Trial>> AllTrials(v1::JobService::Stub& stub,
                                                 const std::string& id) {
  std::vector<v1::Trial> out;
  std::string token;
  do {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    v1::ListCandidatesRequest r;
    r.set_job_id(id);
    r.set_page_size(1000);
    r.set_page_token(token);
    v1::ListCandidatesResponse page;
    grpc::Status s = stub.ListCandidates(&ctx, r, &page);
    if (!s.ok()) return absl::UnavailableError(s.error_message());
    for (auto& t : *page.mutable_trials()) out.push_back(std::move(t));
    token = page.next_page_token();
  } while (!token.empty());
  return out;
}

// The same job with and without early stopping, on the running service, one after the other
// (so they do not share CPUs): training compute (sum of train_seconds and of epochs over all
// trials) and the best validation accuracy.
int BenchEarlyStoppingLive(const Args& a) {
  auto spec = ParseJobSpecYaml(ReadFile(a.Get("job")));
  if (!spec.ok()) {
    std::cerr << "error: " << a.Get("job") << ": " << spec.status().message() << "\n";
    return 2;
  }
  if (spec->early_stopping().rule() == "none" || spec->early_stopping().rule().empty()) {
    std::cerr << "error: " << a.Get("job") << ": early_stopping.rule: the job must use a rule\n";
    return 2;
  }
  const char* env = getenv("NASFORGE_CONTROLLER");
  std::string target = a.Get("controller", env ? env : "127.0.0.1:50051");
  auto channel = Connect(a, target);
  if (!channel.ok()) {
    std::cerr << "error: --" << channel.status().message() << "\n";
    return 2;
  }
  auto stub = v1::JobService::NewStub(*channel);
  struct Outcome {
    std::string id;
    double train_seconds = 0, epochs = 0, best = 0, wall = 0;
    int stopped = 0, trials = 0;
  };
  auto run = [&](v1::JobSpec s, const std::string& label) -> absl::StatusOr<Outcome> {
    s.set_name(s.name() + "-" + label);
    v1::SubmitJobRequest req;
    *req.mutable_spec() = s;
    v1::Job job;
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    grpc::Status st = stub->SubmitJob(&ctx, req, &job);
    if (!st.ok()) return absl::InvalidArgumentError(st.error_message());
    std::cerr << label << ": job " << job.id() << "\n";
    auto t0 = std::chrono::steady_clock::now();
    Watch(*stub, job.id(), std::cerr);  // stdout is for the result
    Outcome o;
    o.id = job.id();
    o.wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    NF_ASSIGN_OR_RETURN(auto trials, AllTrials(*stub, job.id()));
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
  };
  v1::JobSpec base = *spec;
  base.mutable_early_stopping()->set_rule("none");
  auto without = run(base, "no-early-stopping");
  if (!without.ok()) {
    std::cerr << "error: " << without.status().message() << "\n";
    return 1;
  }
  auto with = run(*spec, spec->early_stopping().rule());
  if (!with.ok()) {
    std::cerr << "error: " << with.status().message() << "\n";
    return 1;
  }
  auto side = [](const Outcome& o) {
    return nlohmann::json{{"job", o.id},           {"trials", o.trials},
                          {"stopped", o.stopped},  {"train_seconds", o.train_seconds},
                          {"epochs", o.epochs},    {"best_accuracy", o.best},
                          {"wall_seconds", o.wall}};
  };
  nlohmann::json j = {
      {"job_spec", a.Get("job")},
      {"rule", spec->early_stopping().rule()},
      {"without", side(*without)},
      {"with", side(*with)},
      {"compute_ratio", without->train_seconds / std::max(1e-9, with->train_seconds)},
      {"epochs_ratio", without->epochs / std::max(1e-9, with->epochs)},
      {"best_accuracy_delta_pp", 100 * (with->best - without->best)}};
  if (a.Has("json")) {
    std::cout << j.dump(2) << "\n";
  } else {
    std::cout << absl::StrFormat(
        "without early stopping: %d trials, %.0f epochs, %.0f train s, best %.4f\n"
        "with %s: %d trials (%d stopped), %.0f epochs, %.0f train s, best %.4f\n"
        "compute ratio %.2fx (epochs %.2fx), best accuracy delta %+.2f pp\n",
        without->trials, without->epochs, without->train_seconds, without->best,
        spec->early_stopping().rule(), with->trials, with->stopped, with->epochs,
        with->train_seconds, with->best, j["compute_ratio"].get<double>(),
        j["epochs_ratio"].get<double>(), j["best_accuracy_delta_pp"].get<double>());
  }
  return 0;
}

int Bench(const Args& a) {
  if (a.positional.size() >= 2 && a.positional[1] == "strategies") return BenchStrategies(a);
  if (a.positional.size() >= 2 && a.positional[1] == "early-stopping" && a.Has("job")) {
    return BenchEarlyStoppingLive(a);
  }
  if (a.positional.size() < 2 || a.positional[1] != "early-stopping") {
    std::cerr << "error: use 'bench early-stopping ...' or 'bench strategies ...'\n" << kUsage;
    return 2;
  }
  for (const char* required : {"table", "low-column", "high-column", "report-column"}) {
    if (a.Get(required).empty()) {
      std::cerr << "error: bench early-stopping needs --" << required << "\n";
      return 2;
    }
  }
  auto table = Table::ReadCsv(a.Get("table"));
  if (!table.ok()) {
    std::cerr << "error: " << table.status().message() << "\n";
    return 2;
  }
  TwoFidelityOptions o;
  o.low_column = a.Get("low-column");
  o.high_column = a.Get("high-column");
  o.report_column = a.Get("report-column");
  o.seeds_column = a.Get("seeds-column");
  if (a.Has("low-cost")) o.low_cost = std::atof(a.Get("low-cost").c_str());
  if (a.Has("low-count")) o.low_count = std::atoi(a.Get("low-count").c_str());
  if (a.Has("promote")) o.promote = std::atoi(a.Get("promote").c_str());
  if (a.Has("low-strategy"))
    o.low_strategy = a.Get("low-strategy") == "rea" ? "evolution" : a.Get("low-strategy");
  if (a.Has("key-column")) o.key_column = a.Get("key-column");
  if (a.Has("runs")) o.runs = std::atoi(a.Get("runs").c_str());
  if (a.Has("seed")) o.seed = std::strtoull(a.Get("seed").c_str(), nullptr, 10);
  auto r = RunTwoFidelityBench(*table, o);
  if (!r.ok()) {
    std::cerr << "error: " << r.status().message() << "\n";
    return 2;
  }
  auto summary = [](const RunSummary& s) {
    return nlohmann::json{{"mean", s.mean},
                          {"std", s.stddev},
                          {"cost_full_trainings", s.cost},
                          {"full_fidelity_evaluations", s.queries}};
  };
  nlohmann::json sh = summary(r->successive_halving);
  sh["low_fidelity_evaluations"] = o.low_count;
  sh["low_fidelity_strategy"] = o.low_strategy;
  nlohmann::json j = {{"table", a.Get("table")},
                      {"runs", o.runs},
                      {"report_column", o.report_column},
                      {"full_fidelity_random", summary(r->full_fidelity)},
                      {"successive_halving", sh},
                      {"best_accuracy_delta_pp", r->best_accuracy_delta_pp},
                      {"compute_ratio", r->compute_ratio},
                      {"compute_ratio_is_lower_bound", r->compute_ratio_is_lower_bound},
                      {"random_full_trainings_to_match", r->full_queries_to_match}};
  if (a.Has("json")) {
    std::cout << j.dump(2) << "\n";
  } else {
    std::cout << absl::StrFormat(
        "%s over %d runs\n"
        "  full-fidelity random search, %d trainings:        %.2f +- %.2f\n"
        "  successive halving, %d low + %d full (%.1f):   %.2f +- %.2f\n"
        "  delta at equal cost: %+.2f pp; random search needs %d full trainings to match "
        "(compute ratio %s%.1fx)\n",
        o.report_column, o.runs, r->full_fidelity.queries, r->full_fidelity.mean,
        r->full_fidelity.stddev, o.low_count, o.promote, r->successive_halving.cost,
        r->successive_halving.mean, r->successive_halving.stddev, r->best_accuracy_delta_pp,
        r->full_queries_to_match, r->compute_ratio_is_lower_bound ? ">=" : "", r->compute_ratio);
  }
  return 0;
}

// `nasforge token create|list|revoke`: edits the controller's token file offline (the
// controller re-reads it when it changes).
int Tokens(const Args& a) {
  const std::string sub = a.positional.size() > 1 ? a.positional[1] : "";
  const std::string file = a.Get("file");
  if (file.empty() || (sub != "create" && sub != "list" && sub != "revoke")) {
    std::cerr << "error: use 'token create|list|revoke --file TOKENS ...'\n" << kUsage;
    return 2;
  }
  auto tokens = TokenFile::Load(file);
  if (!tokens.ok()) {
    std::cerr << "error: " << tokens.status().message() << "\n";
    return 1;
  }
  if (sub == "list") {
    std::cout << absl::StrFormat("%-24s %-8s %s\n", "NAME", "ROLE", "CREATED");
    for (const auto& e : tokens->entries()) {
      std::cout << absl::StrFormat(
          "%-24s %-8s %s\n", e.name, RoleName(e.role),
          absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", absl::FromUnixSeconds(e.created),
                           absl::UTCTimeZone()));
    }
    return 0;
  }
  absl::Status st;
  std::string secret;
  if (sub == "create") {
    auto role = ParseRole(a.Get("role"));
    if (!role.ok()) {
      std::cerr << "error: --" << role.status().message() << "\n";
      return 2;
    }
    auto made = tokens->Create(a.Get("name"), *role, absl::Now());
    st = made.status();
    if (made.ok()) secret = *made;
  } else {
    st = tokens->Revoke(a.Get("name"));
  }
  if (st.ok()) st = tokens->Save(file);
  if (!st.ok()) {
    std::cerr << "error: --" << st.message() << "\n";
    return st.code() == absl::StatusCode::kInvalidArgument ? 2 : 1;
  }
  if (sub == "create") {
    // The only time the token is shown: stdout alone, so `> FILE` captures just the token.
    std::cout << secret << "\n";
    std::cerr << "token '" << a.Get("name") << "' (" << a.Get("role")
              << ") created; store it now, it cannot be shown again\n";
  } else {
    std::cerr << "token '" << a.Get("name") << "' revoked\n";
  }
  return 0;
}

int Run(int argc, char** argv) {
  Args a = Parse(argc, argv);
  if (a.positional.empty() || a.Has("help")) {
    std::cerr << kUsage;
    return a.Has("help") ? 0 : 2;
  }
  if (a.positional[0] == "space" || a.positional[0] == "cost") return Offline(a);
  if (a.positional[0] == "bench") return Bench(a);
  if (a.positional[0] == "token") return Tokens(a);
  const char* env = getenv("NASFORGE_CONTROLLER");
  std::string target = a.Get("controller", env ? env : "127.0.0.1:50051");
  auto channel = Connect(a, target);
  if (!channel.ok()) {
    std::cerr << "error: --" << channel.status().message() << "\n";
    return 2;
  }
  auto stub = v1::JobService::NewStub(*channel);
  const std::string cmd = a.positional[0];
  auto need_job = [&]() -> std::string {
    if (a.positional.size() < 2) {
      std::cerr << "error: " << cmd << " needs a job id\n" << kUsage;
      std::exit(2);
    }
    return a.positional[1];
  };
  auto ctx = [] {
    auto c = std::make_unique<grpc::ClientContext>();
    c->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    return c;
  };
  if (cmd == "submit") {
    if (a.positional.size() < 2) {
      std::cerr << "error: submit needs a job spec file\n" << kUsage;
      return 2;
    }
    std::ifstream f(a.positional[1]);
    if (!f) {
      std::cerr << "error: cannot read '" << a.positional[1] << "'\n";
      return 2;
    }
    std::stringstream ss;
    ss << f.rdbuf();
    v1::SubmitJobRequest req;
    req.set_spec_yaml(ss.str());
    // Idempotent by default: a fresh key per command, reused by the retries below, so an answer
    // lost on the way (or a store outage) never makes a second job.
    std::string key = a.Get("idempotency-key");
    if (key.empty()) {
      std::random_device rd;
      key = absl::StrFormat("cli-%08x%08x%08x%08x", rd(), rd(), rd(), rd());
    }
    req.set_idempotency_key(key);
    v1::Job job;
    grpc::Status s;
    for (int attempt = 1;; ++attempt) {
      auto c = ctx();
      s = stub->SubmitJob(c.get(), req, &job);
      bool transient = s.error_code() == grpc::StatusCode::UNAVAILABLE ||
                       s.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED;
      if (s.ok() || !transient || attempt >= 5) break;
      std::cerr << "level=warn event=submit_retry attempt=" << attempt << " error=\""
                << s.error_message() << "\" key=" << key << "\n";
      std::this_thread::sleep_for(std::chrono::milliseconds(500 << attempt));
    }
    if (!s.ok()) {
      std::cerr << "hint: retrying with --idempotency-key " << key
                << " can never create a second job\n";
      return Fail(s, absl::StrCat("submit ", a.positional[1]));
    }
    if (a.Has("json")) {
      std::cout << Json(job) << "\n";
    } else {
      std::cout << job.id() << "\n" << std::flush;
    }
    if (a.Has("watch")) return Watch(*stub, job.id());
    return 0;
  }
  if (cmd == "status") {
    v1::GetJobRequest req;
    req.set_job_id(need_job());
    v1::Job job;
    auto c = ctx();
    grpc::Status s = stub->GetJob(c.get(), req, &job);
    if (!s.ok()) return Fail(s, "status");
    if (a.Has("json")) {
      std::cout << Json(job) << "\n";
    } else {
      PrintJob(job);
    }
    return 0;
  }
  if (cmd == "watch") return Watch(*stub, need_job());
  if (cmd == "cancel") {
    v1::CancelJobRequest req;
    req.set_job_id(need_job());
    v1::Job job;
    auto c = ctx();
    grpc::Status s = stub->CancelJob(c.get(), req, &job);
    if (!s.ok()) return Fail(s, "cancel");
    std::cout << job.id() << " " << Short(v1::JobState_Name(job.state())) << "\n";
    return 0;
  }
  if (cmd == "jobs") {
    v1::ListJobsRequest req;
    v1::ListJobsResponse resp;
    auto c = ctx();
    grpc::Status s = stub->ListJobs(c.get(), req, &resp);
    if (!s.ok()) return Fail(s, "jobs");
    if (a.Has("json")) {
      std::cout << Json(resp) << "\n";
      return 0;
    }
    std::printf("%-18s %-10s %-6s %-6s %s\n", "job", "state", "done", "budget", "name");
    for (const auto& j : resp.jobs()) {
      const auto& k = j.counts();
      std::printf("%-18s %-10s %-6d %-6d %s\n", j.id().c_str(),
                  Short(v1::JobState_Name(j.state())).c_str(),
                  k.succeeded() + k.stopped() + k.failed() + k.cancelled(),
                  j.spec().budget().max_trials(), j.spec().name().c_str());
    }
    return 0;
  }
  if (cmd == "candidates") {
    v1::ListCandidatesRequest req;
    req.set_job_id(need_job());
    v1::ListCandidatesResponse all;
    do {
      v1::ListCandidatesResponse page;
      auto c = ctx();
      grpc::Status s = stub->ListCandidates(c.get(), req, &page);
      if (!s.ok()) return Fail(s, "candidates");
      for (auto& t : *page.mutable_trials()) *all.add_trials() = std::move(t);
      req.set_page_token(page.next_page_token());
    } while (!req.page_token().empty());
    if (a.Has("json")) {
      std::cout << Json(all) << "\n";
    } else {
      PrintTrials(all.trials());
    }
    return 0;
  }
  if (cmd == "pareto") {
    v1::QueryParetoRequest req;
    req.set_job_id(need_job());
    for (absl::string_view o : absl::StrSplit(a.Get("objectives"), ',', absl::SkipEmpty())) {
      auto obj = ParseObjective(o);
      if (!obj.ok()) {
        std::cerr << "error: --objectives: " << obj.status().message() << "\n";
        return 2;
      }
      *req.add_objectives() = *obj;
    }
    for (absl::string_view w : absl::StrSplit(a.Get("where"), ',', absl::SkipEmpty())) {
      auto con = ParseConstraint(w);
      if (!con.ok()) {
        std::cerr << "error: --where: " << con.status().message() << "\n";
        return 2;
      }
      *req.add_constraints() = *con;
    }
    req.set_hardware_profile(a.Get("hardware-profile"));
    if (a.Has("limit")) req.set_limit(std::atoi(a.Get("limit").c_str()));
    req.set_include_stopped(a.Has("include-stopped"));
    v1::QueryParetoResponse resp;
    auto c = ctx();
    grpc::Status s = stub->QueryPareto(c.get(), req, &resp);
    if (!s.ok()) return Fail(s, "pareto");
    if (a.Has("json")) {
      std::cout << Json(resp) << "\n";
    } else {
      std::cout << "Pareto front of " << req.job_id() << ": " << resp.trials_size()
                << " non-dominated of " << resp.considered() << " candidates\n";
      PrintTrials(resp.trials());
    }
    return 0;
  }
  std::cerr << "error: unknown command '" << cmd << "'\n" << kUsage;
  return 2;
}

}  // namespace
}  // namespace nasforge

int main(int argc, char** argv) { return nasforge::Run(argc, argv); }
