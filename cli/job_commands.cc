// submit, status, watch, cancel, extend, resume, enqueue, delete, jobs, candidates: the
// JobService, one subcommand each (pareto is pareto_command.cc, compress compress_command.cc).
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "cli/commands.h"
#include "cli/flags.h"
#include "cli/job_client.h"
#include "report/candidate_table.h"
#include "report/format.h"

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
}

}  // namespace nasforge::cli
