// submit, status, watch, cancel, jobs, candidates, pareto: the JobService, one subcommand each.
// Over 500 lines because the seven subcommands share this file's call, wait and format helpers
// (AllCandidates, the Pareto request builder); pareto's --plot (WritePlot, PlotValue) is the part
// to move into a file of its own when it grows.
#include <cmath>
#include <cstdint>
#include <fstream>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "cli/commands.h"
#include "cli/flags.h"
#include "cli/job_client.h"
#include "core/pareto.h"
#include "core/search_space.h"
#include "report/candidate_table.h"
#include "report/format.h"
#include "report/pareto_plot.h"

namespace nasforge::cli {
using namespace ::nasforge::report;  // NOLINT: the shared formatting of jobs, tables and plots
namespace {

using Stub = v1::JobService::Stub;

// Runs `body` with a stub on the channel the global flags describe.
int WithStub(CommandContext& c, const std::function<int(Stub&)>& body) {
  auto stub = ConnectJobService(c.connection);
  if (!stub.ok()) {
    return ReportError(c.io, stub.status(), "connecting to " + c.connection.controller);
  }
  return body(**stub);
}

// Follows the job to its end on io.out; kExitOk only if it SUCCEEDED.
int Follow(CommandContext& c, Stub& stub, const std::string& job_id) {
  auto job = FollowJob(stub, job_id, c.io.out, c.io.out_is_terminal);
  if (!job.ok()) return ReportError(c.io, job.status(), "watch " + job_id);
  return job->state() == v1::JOB_SUCCEEDED ? kExitOk : kExitJobNotSucceeded;
}

struct SubmitOptions {
  std::string file, idempotency_key;
  std::vector<std::string> warm_start;
  bool watch = false, json = false;
};

int Submit(CommandContext& c, const SubmitOptions& o, Stub& stub) {
  auto yaml = ReadInputFile(o.file, "JOB.yaml");
  if (!yaml.ok()) return ReportError(c.io, yaml.status(), "submit");
  v1::SubmitJobRequest req;
  req.set_spec_yaml(*yaml);
  for (const auto& w : o.warm_start) req.add_warm_start_jobs(w);
  // Idempotent by default: a fresh key per command, reused by the retries, so an answer lost on
  // the way (or a store outage) never makes a second job.
  req.set_idempotency_key(o.idempotency_key.empty() ? NewIdempotencyKey() : o.idempotency_key);
  auto job = SubmitWithRetry(stub, req, c.io.err);
  if (!job.ok()) {
    if (!absl::IsInvalidArgument(job.status())) {
      c.io.err << "hint: retrying with --idempotency-key " << req.idempotency_key()
               << " can never create a second job\n";
    }
    return ReportError(c.io, job.status(), "submit " + o.file);
  }
  c.io.out << (o.json ? ProtoJson(*job) : job->id()) << "\n" << std::flush;
  return o.watch ? Follow(c, stub, job->id()) : kExitOk;
}

struct JobOptions {
  std::string job;
  bool json = false;
};

int Status(CommandContext& c, const JobOptions& o, Stub& stub) {
  v1::GetJobRequest req;
  req.set_job_id(o.job);
  auto job = Call(stub, &Stub::GetJob, req);
  if (!job.ok()) return ReportError(c.io, job.status(), "status " + o.job);
  c.io.out << (o.json ? ProtoJson(*job) + "\n" : FormatJob(*job));
  return kExitOk;
}

int Cancel(CommandContext& c, const JobOptions& o, Stub& stub) {
  v1::CancelJobRequest req;
  req.set_job_id(o.job);
  auto job = Call(stub, &Stub::CancelJob, req);
  if (!job.ok()) return ReportError(c.io, job.status(), "cancel " + o.job);
  c.io.out << (o.json ? ProtoJson(*job)
                      : absl::StrCat(job->id(), " ", ShortState(v1::JobState_Name(job->state()))))
           << "\n";
  return kExitOk;
}

struct ExtendOptions {
  std::string job;
  int add_trials = 0, max_trials = 0;
  bool resume = false, json = false, watch = false;
};

// extend / resume: more budget; an ended job runs again.
int Extend(CommandContext& c, const ExtendOptions& o, Stub& stub) {
  v1::ExtendJobRequest req;
  req.set_job_id(o.job);
  req.set_add_trials(o.add_trials);
  req.set_max_trials(o.max_trials);
  req.set_resume(o.resume);
  auto job = Call(stub, &Stub::ExtendJob, req);
  if (!job.ok()) return ReportError(c.io, job.status(), (o.resume ? "resume " : "extend ") + o.job);
  if (o.json) {
    c.io.out << ProtoJson(*job) << "\n";
  } else {
    c.io.out << job->id() << " " << ShortState(v1::JobState_Name(job->state())) << ", budget "
             << job->spec().budget().max_trials() << " trials\n";
  }
  return o.watch ? Follow(c, stub, o.job) : kExitOk;
}

struct JobsOptions {
  std::vector<std::string> states, labels;
  std::string owner, name;
  int limit = 50;
  bool json = false;
};

// The ListJobs request the flags describe; INVALID_ARGUMENT naming --state or --label.
absl::StatusOr<v1::ListJobsRequest> JobsRequest(const JobsOptions& o) {
  v1::ListJobsRequest req;
  for (const std::string& s : o.states) {
    v1::JobState st;
    if (!v1::JobState_Parse("JOB_" + absl::AsciiStrToUpper(s), &st)) {
      return absl::InvalidArgumentError(
          absl::StrCat("--state: '", s, "' is not one of running, succeeded, failed, cancelled"));
    }
    req.add_states(st);
  }
  for (const std::string& l : o.labels) {
    std::pair<std::string, std::string> kv = absl::StrSplit(l, absl::MaxSplits('=', 1));
    if (kv.first.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--label: '", l, "': expected KEY=VALUE or KEY (any value)"));
    }
    (*req.mutable_labels())[kv.first] = kv.second;
  }
  req.set_owner(o.owner);
  req.set_name(o.name);
  return req;
}

struct EnqueueOptions {
  std::string job, file;
  bool json = false;
};

// enqueue: a known architecture (the YAML `nasforge cost` reads) as a queued trial of the job.
int Enqueue(CommandContext& c, const EnqueueOptions& o, Stub& stub) {
  v1::EnqueueCandidateRequest req;
  req.set_job_id(o.job);
  if (absl::Status st = LoadYaml(o.file, "ARCH.yaml", req.mutable_architecture()); !st.ok()) {
    return ReportError(c.io, st, "enqueue");
  }
  auto trial = Call(stub, &Stub::EnqueueCandidate, req);
  if (!trial.ok()) return ReportError(c.io, trial.status(), "enqueue " + o.job);
  c.io.out << (o.json ? ProtoJson(*trial)
                      : absl::StrCat(o.job, " trial ", trial->id(), " queued (",
                                     trial->arch_hash().substr(0, 16), ")"))
           << "\n";
  return kExitOk;
}

int Delete(CommandContext& c, const JobOptions& o, Stub& stub) {
  v1::DeleteJobRequest req;
  req.set_job_id(o.job);
  auto done = Call(stub, &Stub::DeleteJob, req);
  if (!done.ok()) return ReportError(c.io, done.status(), "delete " + o.job);
  c.io.out << (o.json ? ProtoJson(*done)
                      : absl::StrCat(o.job, " deleted (", done->trials_deleted(), " trials)"))
           << "\n";
  return kExitOk;
}

int Jobs(CommandContext& c, const JobsOptions& o, Stub& stub) {
  auto req = JobsRequest(o);
  if (!req.ok()) return ReportError(c.io, req.status(), "jobs");
  v1::ListJobsResponse all;
  bool more = false;
  // Pages until --limit jobs (0: every job).
  for (;;) {
    req->set_page_size(o.limit > 0 ? std::min(500, o.limit - all.jobs_size()) : 500);
    auto page = Call(stub, &Stub::ListJobs, *req);
    if (!page.ok()) return ReportError(c.io, page.status(), "jobs");
    for (auto& j : *page->mutable_jobs()) *all.add_jobs() = std::move(j);
    more = !page->next_page_token().empty();
    if (!more || (o.limit > 0 && all.jobs_size() >= o.limit)) break;
    req->set_page_token(page->next_page_token());
  }
  c.io.out << (o.json ? ProtoJson(all) + "\n" : FormatJobList(all));
  if (more && !o.json) {
    c.io.err << "(the newest " << all.jobs_size() << " shown; --limit 0 lists all)\n";
  }
  return kExitOk;
}

struct CandidatesOptions {
  std::string job, format = "table";
  bool json = false;
};

int Candidates(CommandContext& c, const CandidatesOptions& o, Stub& stub) {
  v1::GetJobRequest get;
  get.set_job_id(o.job);
  auto job = Call(stub, &Stub::GetJob, get);
  if (!job.ok()) return ReportError(c.io, job.status(), "candidates " + o.job);
  auto trials = AllCandidates(stub, o.job);
  if (!trials.ok()) return ReportError(c.io, trials.status(), "candidates " + o.job);
  v1::ListCandidatesResponse all;
  for (auto& t : *trials) *all.add_trials() = std::move(t);
  const std::string format = o.json ? "json" : o.format;
  if (format == "json") {
    c.io.out << ProtoJson(all) << "\n";
  } else if (format == "csv") {
    c.io.out << CandidatesCsv(all.trials(), CandidateColumns(job->spec()));
  } else {
    c.io.out << CandidatesTable(all.trials(), CandidateColumns(job->spec()));
  }
  return kExitOk;
}

struct ParetoOptions {
  std::string job, objectives, where, hardware_profile, plot, variants = "exclude";
  int limit = 0;
  bool include_stopped = false, json = false;
};

// `metric` of `t` for a plot; with `profile`, a latency metric is the one measured on that
// hardware target (by name or profile), as the controller resolved it for the query.
std::optional<double> PlotValue(const v1::Trial& t, const std::string& metric,
                                const std::string& profile) {
  if (!profile.empty() && absl::StartsWith(metric, "latency_") && !absl::StrContains(metric, "@")) {
    for (const auto& m : t.latencies()) {
      if (m.target() != profile && m.profile() != profile) continue;
      if (metric == "latency_ms") return m.p50_ms();
      if (metric == "latency_p90_ms") return m.p90_ms();
      if (metric == "latency_p99_ms") return m.p99_ms();
    }
  }
  auto it = t.metrics().find(metric);
  if (it == t.metrics().end()) return std::nullopt;
  return it->second;
}

// Writes the scatter of every finished candidate in the query's first two objectives, the
// answer's front highlighted.
int WritePlot(CommandContext& c, const ParetoOptions& o, const v1::QueryParetoRequest& req,
              const v1::QueryParetoResponse& resp, Stub& stub) {
  std::vector<v1::Objective> objectives(req.objectives().begin(), req.objectives().end());
  if (objectives.empty()) {
    v1::GetJobRequest get;
    get.set_job_id(o.job);
    auto job = Call(stub, &Stub::GetJob, get);
    if (!job.ok()) return ReportError(c.io, job.status(), "pareto " + o.job);
    objectives.assign(job->spec().objectives().begin(), job->spec().objectives().end());
  }
  if (objectives.size() < 2) {
    return ReportError(c.io,
                       absl::InvalidArgumentError("--plot: needs two objectives (give "
                                                  "--objectives METRIC:max,METRIC:min)"),
                       "pareto " + o.job);
  }
  auto trials = AllCandidates(stub, o.job);
  if (!trials.ok()) return ReportError(c.io, trials.status(), "pareto " + o.job);
  std::set<int64_t> front;
  for (const auto& t : resp.trials()) front.insert(t.id());
  const std::string& mx = objectives[0].metric();
  const std::string& my = objectives[1].metric();
  std::vector<PlotPoint> points;
  for (const auto& t : *trials) {
    if (t.state() != v1::TRIAL_SUCCEEDED &&
        !(o.include_stopped && t.state() == v1::TRIAL_STOPPED)) {
      continue;
    }
    if (t.has_variant() ? o.variants == "exclude" : o.variants == "only") continue;
    auto x = PlotValue(t, mx, o.hardware_profile), y = PlotValue(t, my, o.hardware_profile);
    PlotPoint p;
    p.x = x.value_or(NAN);
    p.y = y.value_or(NAN);
    p.front = front.count(t.id()) > 0;
    p.label = absl::StrFormat("trial %d: %s %.6g, %s %.6g; %s", t.id(), mx, p.x, my, p.y,
                              ArchSummary(t.architecture()));
    points.push_back(std::move(p));
  }
  auto dir = [](const v1::Objective& ob) {
    return ob.direction() == v1::MAXIMIZE ? " (max)" : " (min)";
  };
  const std::string where = o.hardware_profile.empty() ? "" : " on " + o.hardware_profile;
  PlotAxes axes{absl::StrCat("Pareto front of ", o.job),
                absl::StrCat(mx, where, dir(objectives[0])),
                absl::StrCat(my, where, dir(objectives[1]))};
  std::ofstream f(o.plot, std::ios::trunc);
  f << ParetoSvg(points, axes);
  f.close();
  if (!f) {
    return ReportError(c.io, absl::UnavailableError(absl::StrCat("--plot: cannot write ", o.plot)),
                       "pareto " + o.job);
  }
  c.io.err << "wrote " << o.plot << " (" << points.size() << " candidates, " << front.size()
           << " on the front)\n";
  return kExitOk;
}

// The QueryPareto request the flags describe; INVALID_ARGUMENT naming --objectives or --where.
absl::StatusOr<v1::QueryParetoRequest> ParetoRequest(const ParetoOptions& o) {
  v1::QueryParetoRequest req;
  req.set_job_id(o.job);
  for (absl::string_view text : absl::StrSplit(o.objectives, ',', absl::SkipEmpty())) {
    auto obj = ParseObjective(text);
    if (!obj.ok())
      return absl::InvalidArgumentError(absl::StrCat("--objectives: ", obj.status().message()));
    *req.add_objectives() = *obj;
  }
  for (absl::string_view text : absl::StrSplit(o.where, ',', absl::SkipEmpty())) {
    auto con = ParseConstraint(text);
    if (!con.ok())
      return absl::InvalidArgumentError(absl::StrCat("--where: ", con.status().message()));
    *req.add_constraints() = *con;
  }
  req.set_hardware_profile(o.hardware_profile);
  req.set_limit(o.limit);
  req.set_include_stopped(o.include_stopped);
  req.set_variants(o.variants);
  return req;
}

int Pareto(CommandContext& c, const ParetoOptions& o) {
  auto req = ParetoRequest(o);
  if (!req.ok()) return ReportError(c.io, req.status(), "pareto");
  if (!o.plot.empty() && !absl::EndsWith(o.plot, ".svg")) {
    return ReportError(c.io,
                       absl::InvalidArgumentError(
                           absl::StrCat("--plot: '", o.plot,
                                        "' does not end in .svg; only SVG is written (for a PNG: "
                                        "rsvg-convert -o pareto.png pareto.svg)")),
                       "pareto");
  }
  return WithStub(c, [&](Stub& stub) -> int {
    auto front = Call(stub, &Stub::QueryPareto, *req);
    if (!front.ok()) return ReportError(c.io, front.status(), "pareto " + o.job);
    const v1::QueryParetoResponse& resp = *front;
    if (!o.plot.empty()) {
      if (int rc = WritePlot(c, o, *req, resp, stub); rc != kExitOk) return rc;
    }
    if (o.json) {
      c.io.out << ProtoJson(resp) << "\n";
    } else {
      c.io.out << "Pareto front of " << o.job << ": " << resp.trials_size() << " non-dominated of "
               << resp.considered() << " candidates\n"
               << (o.hardware_profile.empty()
                       ? ""
                       : absl::StrCat("latency_ms: measured on ", o.hardware_profile, "\n"))
               << FormatTrials(resp.trials(), o.hardware_profile);
    }
    return kExitOk;
  });
}

// A subcommand taking one job id and --json, run with a stub.
void AddJobIdCommand(CLI::App& app, CommandContext& c, const std::string& name,
                     const std::string& help, int (*run)(CommandContext&, const JobOptions&, Stub&),
                     bool takes_json) {
  auto o = std::make_shared<JobOptions>();
  CLI::App* cmd = app.add_subcommand(name, help);
  cmd->add_option("JOB", o->job, "job id")->required();
  if (takes_json) cmd->add_flag("--json", o->json, "print the answer as JSON");
  cmd->callback(
      [&c, o, run] { c.exit_code = WithStub(c, [&](Stub& stub) { return run(c, *o, stub); }); });
}

}  // namespace

void AddJobCommands(CLI::App& app, CommandContext& c) {
  {
    auto o = std::make_shared<SubmitOptions>();
    CLI::App* cmd = app.add_subcommand("submit", "submit a job spec (prints the job id)");
    cmd->add_option("JOB.yaml", o->file, "job spec file (YAML)")->required();
    cmd->add_flag("--watch", o->watch, "follow the job until it ends (exit 3 unless it succeeds)");
    cmd->add_option("--idempotency-key", o->idempotency_key,
                    "resubmitting with the same key never creates a second job "
                    "(default: a fresh key, reused by this command's retries)");
    cmd->add_flag("--json", o->json, "print the created job as JSON");
    cmd->add_option("--warm-start", o->warm_start,
                    "start from these earlier jobs' trials (same space; JOB[,JOB]): prior "
                    "observations for the strategy, reused results when the recipe is the same")
        ->delimiter(',');
    cmd->callback(
        [&c, o] { c.exit_code = WithStub(c, [&](Stub& stub) { return Submit(c, *o, stub); }); });
  }
  AddJobIdCommand(app, c, "status", "a job's state, counts and best objective", Status, true);
  AddJobIdCommand(
      app, c, "watch", "live progress until the job ends (exit 3 unless it succeeds)",
      [](CommandContext& c, const JobOptions& o, Stub& stub) { return Follow(c, stub, o.job); },
      false);
  AddJobIdCommand(app, c, "cancel", "cancel a job (its running trials are stopped)", Cancel, true);
  {
    auto o = std::make_shared<EnqueueOptions>();
    CLI::App* cmd = app.add_subcommand(
        "enqueue",
        "seed a known architecture as a queued trial of a running job (trained like "
        "the strategy's own, told to it when it finishes)");
    cmd->add_option("JOB", o->job, "job id")->required();
    cmd->add_option("ARCH.yaml", o->file, "architecture file (YAML, as for `nasforge cost`)")
        ->required();
    cmd->add_flag("--json", o->json, "print the trial as JSON");
    cmd->callback(
        [&c, o] { c.exit_code = WithStub(c, [&](Stub& stub) { return Enqueue(c, *o, stub); }); });
  }
  AddJobIdCommand(app, c, "delete",
                  "delete an ended job, its trials and their artifacts (cancel a running one "
                  "first)",
                  Delete, true);
  for (const bool resume : {false, true}) {
    auto o = std::make_shared<ExtendOptions>();
    o->resume = resume;
    CLI::App* cmd =
        resume ? app.add_subcommand("resume",
                                    "run a cancelled or failed job again: its cancelled and "
                                    "failed trials are added to its budget")
               : app.add_subcommand("extend",
                                    "more trials for a job, running or ended (an ended job "
                                    "runs again, its strategy going on where it stopped)");
    cmd->add_option("JOB", o->job, "job id")->required();
    auto* add = cmd->add_option("--add-trials", o->add_trials, "add N trials to the budget")
                    ->check(IntAtLeast(1));
    if (!resume) {
      cmd->add_option("--max-trials", o->max_trials,
                      "the new budget (above the current one; a retry does not add twice)")
          ->check(IntAtLeast(1))
          ->excludes(add);
    }
    cmd->add_flag("--watch", o->watch, "follow the job until it ends (exit 3 unless it succeeds)");
    cmd->add_flag("--json", o->json, "print the job as JSON");
    cmd->callback(
        [&c, o] { c.exit_code = WithStub(c, [&](Stub& stub) { return Extend(c, *o, stub); }); });
  }
  {
    auto o = std::make_shared<CandidatesOptions>();
    CLI::App* cmd = app.add_subcommand("candidates", "every candidate of a job, one line each");
    cmd->add_option("JOB", o->job, "job id")->required();
    cmd->add_option("--format", o->format,
                    "table (default), csv or json; the columns follow the job's objectives, "
                    "constraints and hardware targets")
        ->transform(CLI::IsMember({"table", "csv", "json"}, CLI::ignore_case));
    cmd->add_flag("--json", o->json, "the same as --format json");
    cmd->callback([&c, o] {
      c.exit_code = WithStub(c, [&](Stub& stub) { return Candidates(c, *o, stub); });
    });
  }
  {
    auto o = std::make_shared<JobsOptions>();
    CLI::App* cmd = app.add_subcommand("jobs", "list jobs, newest first");
    cmd->add_option("--state", o->states,
                    "only jobs in this state (running, succeeded, failed, cancelled; repeat for "
                    "any of several)");
    cmd->add_option("--owner", o->owner, "only jobs of this owner (token name)");
    cmd->add_option("--name", o->name, "only jobs whose name contains this (any case)");
    cmd->add_option("--label", o->labels,
                    "only jobs with this label: KEY=VALUE, or KEY for any value (repeatable)");
    cmd->add_option("--limit", o->limit, "at most N jobs (0: all)")
        ->check(IntAtLeast(0))
        ->capture_default_str();
    cmd->add_flag("--json", o->json, "print the answer as JSON");
    cmd->callback(
        [&c, o] { c.exit_code = WithStub(c, [&](Stub& stub) { return Jobs(c, *o, stub); }); });
  }
  {
    auto o = std::make_shared<ParetoOptions>();
    CLI::App* cmd = app.add_subcommand("pareto", "the Pareto-optimal candidates of a job");
    cmd->add_option("JOB", o->job, "job id")->required();
    cmd->add_option("--objectives", o->objectives,
                    "METRIC:max|min,... (default: the job's objectives)");
    cmd->add_option("--where", o->where, "constraints, e.g. \"latency_ms<=5,macs<=3e8\"");
    cmd->add_option("--hardware-profile", o->hardware_profile,
                    "rank by the latency measured on this hardware target of the job (a "
                    "target's name, or its profile): latency_ms in --objectives and --where "
                    "means its latency there; a profile that is no target: only candidates "
                    "trained on it");
    cmd->add_option("--limit", o->limit, "at most N candidates (0: all)")->check(IntAtLeast(0));
    cmd->add_flag("--include-stopped", o->include_stopped,
                  "include early-stopped (low-fidelity) results");
    cmd->add_option("--variants", o->variants,
                    "compressed variants (the job's compression recipes): exclude (the "
                    "search's own front), include (variants compete with the candidates), only")
        ->check(CLI::IsMember({"exclude", "include", "only"}))
        ->capture_default_str();
    cmd->add_flag("--json", o->json, "print the answer as JSON");
    cmd->add_option("--plot", o->plot,
                    "also write FILE.svg: every candidate in the first two objectives, the front "
                    "highlighted (hover a point for its trial and architecture)");
    cmd->callback([&c, o] { c.exit_code = Pareto(c, *o); });
  }
}

}  // namespace nasforge::cli
