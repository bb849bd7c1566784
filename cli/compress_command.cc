// nasforge compress JOB TRIAL: compressed variants of one trial of a job (the controller's
// CompressTrial), with recipes from the flags (--int8, --prune RATIO, --distill) or, with none,
// the job's own compression recipes. Each variant is a trial of the job, made by a worker like
// the front members' variants; --watch follows the job until they are.
#include <cstdint>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "cli/commands.h"
#include "cli/connection.h"
#include "cli/flags.h"
#include "cli/job_client.h"
#include "report/format.h"

namespace nasforge::cli {
namespace {

using report::ProtoJson;
using report::ShortState;

struct CompressOptions {
  std::string job;
  int64_t trial = -1;
  bool int8 = false;
  int calibration_batches = 0;
  double tolerance = 0;
  double prune = 0;
  int prune_epochs = 0;
  bool distill = false;
  std::string teacher, student;
  double alpha = 0, temperature = 0;
  int distill_epochs = 0;
  bool watch = false, json = false;
};

// The recipes the flags ask for (names: the kinds); none: the job's.
v1::CompressTrialRequest Request(const CompressOptions& o) {
  v1::CompressTrialRequest req;
  req.set_job_id(o.job);
  req.set_trial_id(o.trial);
  if (o.int8) {
    auto* q = req.add_recipes()->mutable_int8();
    q->set_calibration_batches(o.calibration_batches);
    q->set_tolerance(o.tolerance);
  }
  if (o.prune > 0) {
    auto* p = req.add_recipes()->mutable_prune();
    p->set_ratio(o.prune);
    p->set_epochs(o.prune_epochs);
  }
  if (o.distill) {
    auto* d = req.add_recipes()->mutable_distill();
    d->set_teacher(o.teacher);
    d->set_alpha(o.alpha);
    d->set_temperature(o.temperature);
    d->set_epochs(o.distill_epochs);
    d->set_student(o.student);
  }
  return req;
}

int Compress(CommandContext& c, const CompressOptions& o) {
  auto stub = ConnectJobService(c.connection);
  if (!stub.ok()) {
    return ReportError(c.io, stub.status(), "connecting to " + c.connection.controller);
  }
  const std::string what = absl::StrCat("compress ", o.job, " ", o.trial);
  auto r = Call(**stub, &v1::JobService::Stub::CompressTrial, Request(o));
  if (!r.ok()) return ReportError(c.io, r.status(), what);
  if (o.json) {
    c.io.out << ProtoJson(*r) << "\n" << std::flush;
  } else {
    for (const v1::Trial& t : r->variants()) {
      c.io.out << "trial " << t.id() << ": " << t.variant().recipe().name() << " of "
               << t.variant().of() << ", " << ShortState(v1::TrialState_Name(t.state()))
               << (t.error().empty() ? "" : absl::StrCat(" (", t.error(), ")")) << "\n";
    }
    c.io.out << std::flush;
  }
  if (!o.watch) return kExitOk;
  auto job = FollowJob(**stub, o.job, c.io.out, c.io.out_is_terminal);
  if (!job.ok()) return ReportError(c.io, job.status(), "watch " + o.job);
  return job->state() == v1::JOB_SUCCEEDED ? kExitOk : kExitJobNotSucceeded;
}

}  // namespace

void AddCompressCommand(CLI::App& app, CommandContext& c) {
  auto o = std::make_shared<CompressOptions>();
  CLI::App* cmd = app.add_subcommand(
      "compress",
      "compressed variants of one trial (int8, pruned, distilled), made by the job's workers "
      "like its front members' (no recipe flags: the job's compression recipes)");
  cmd->add_option("JOB", o->job, "job id")->required();
  cmd->add_option("TRIAL", o->trial, "a succeeded trial of the job")->required();
  cmd->add_flag("--int8", o->int8, "int8 post-training quantization");
  cmd->add_option("--calibration-batches", o->calibration_batches,
                  "--int8: training batches that observe activation ranges (default 8)");
  cmd->add_option("--tolerance", o->tolerance,
                  "--int8: accuracy points the int8 network may lose (default 1.0)");
  cmd->add_option("--prune", o->prune,
                  "structured pruning: this fraction of every width's channels removed, (0, "
                  "0.95]");
  cmd->add_option("--prune-epochs", o->prune_epochs,
                  "--prune: fine-tuning epochs (default a third of the job's; -1: none)");
  cmd->add_flag("--distill", o->distill,
                "knowledge distillation, with a no-teacher control trained beside it");
  cmd->add_option("--teacher", o->teacher, "--distill: best (default) or a trial id");
  cmd->add_option("--alpha", o->alpha, "--distill: the teacher's weight in the loss (default 0.5)");
  cmd->add_option("--temperature", o->temperature, "--distill: T (default 4)");
  cmd->add_option("--distill-epochs", o->distill_epochs,
                  "--distill: epochs (default the job's budget)");
  cmd->add_option("--student", o->student,
                  "--distill: the name of a prune recipe (\"prune\" with --prune): the trial "
                  "pruned by it is the student (default: the trial's own architecture)");
  cmd->add_flag("--watch", o->watch, "follow the job until it ends (exit 3 unless it succeeds)");
  cmd->add_flag("--json", o->json, "print the variants as JSON");
  cmd->callback([&c, o] { c.exit_code = Compress(c, *o); });
}

}  // namespace nasforge::cli
