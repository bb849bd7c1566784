// export: a trial as a bundle PyTorch loads without nasforge (export/bundle.h): the candidate
// from GetCandidate, its weights and self-check from GetArtifact, written by WriteExportBundle.
#include <cstdint>
#include <string>

#include "absl/strings/str_cat.h"
#include "cli/commands.h"
#include "cli/job_client.h"
#include "export/bundle.h"

namespace nasforge::cli {
namespace {

using Stub = v1::JobService::Stub;

struct ExportOptions {
  std::string job, format = "pytorch", out;
  int64_t trial = -1;
  bool overwrite = false;
};

// The whole artifact, chunk by chunk.
absl::StatusOr<std::string> FetchArtifact(Stub& stub, const ExportOptions& o,
                                          const std::string& name) {
  std::string bytes;
  int64_t total = -1;
  while (total < 0 || static_cast<int64_t>(bytes.size()) < total) {
    v1::GetArtifactRequest req;
    req.set_job_id(o.job);
    req.set_trial_id(o.trial);
    req.set_name(name);
    req.set_offset(static_cast<int64_t>(bytes.size()));
    auto chunk = Call(stub, &Stub::GetArtifact, req);
    if (!chunk.ok()) return chunk.status();
    total = chunk->total_size();
    if (chunk->data().empty() && static_cast<int64_t>(bytes.size()) < total) {
      return absl::DataLossError(
          absl::StrCat(name, ": the controller sent ", bytes.size(), " of ", total, " bytes"));
    }
    bytes += chunk->data();
  }
  return bytes;
}

int Export(CommandContext& c, const ExportOptions& o) {
  const std::string what = absl::StrCat("export ", o.job, " ", o.trial);
  if (o.format != "pytorch") {
    return ReportError(c.io,
                       absl::InvalidArgumentError(absl::StrCat(
                           "--format: only pytorch is supported, got '", o.format,
                           "' (ONNX: export to pytorch, then torch.onnx.export; see README.md "
                           "in the bundle)")),
                       what);
  }
  auto stub = ConnectJobService(c.connection);
  if (!stub.ok())
    return ReportError(c.io, stub.status(), "connecting to " + c.connection.controller);
  v1::GetCandidateRequest req;
  req.set_job_id(o.job);
  req.set_trial_id(o.trial);
  auto trial = Call(**stub, &Stub::GetCandidate, req);
  if (!trial.ok()) return ReportError(c.io, trial.status(), what);
  if (trial->state() != v1::TRIAL_SUCCEEDED && trial->state() != v1::TRIAL_STOPPED) {
    return ReportError(c.io,
                       absl::FailedPreconditionError(absl::StrCat(
                           "trial ", o.trial, " is ", v1::TrialState_Name(trial->state()),
                           ": only trained candidates (succeeded or stopped early) have weights")),
                       what);
  }
  auto weights = FetchArtifact(**stub, o, "weights.pt");
  if (!weights.ok()) return ReportError(c.io, weights.status(), what);
  auto check = FetchArtifact(**stub, o, "check.pt");
  if (!check.ok() && !absl::IsNotFound(check.status())) {
    return ReportError(c.io, check.status(), what);
  }
  const std::string out = o.out.empty() ? absl::StrCat(o.job, "-trial", o.trial) : o.out;
  absl::Status written =
      WriteExportBundle(out, *trial, *weights, check.ok() ? *check : "", o.overwrite);
  if (!written.ok()) return ReportError(c.io, written, what);
  c.io.out << out << "\n";
  c.io.err << "exported trial " << o.trial << " of " << o.job << " (arch " << trial->arch_hash()
           << ", " << weights->size() << " bytes of weights) to " << out
           << "/: python3 -c \"import model; print(model.load('" << out << "'))\" from there\n";
  return kExitOk;
}

}  // namespace

void AddExportCommand(CLI::App& app, CommandContext& context) {
  auto o = std::make_shared<ExportOptions>();
  auto* cmd =
      app.add_subcommand("export",
                         "a trained candidate as a bundle PyTorch loads without nasforge "
                         "(architecture.json, model.py, weights.pt, check.pt, metrics.json)");
  cmd->add_option("JOB", o->job, "job id")->required();
  cmd->add_option("TRIAL", o->trial, "trial id")->required()->check(CLI::NonNegativeNumber);
  cmd->add_option("--format", o->format, "pytorch")->capture_default_str();
  cmd->add_option("--out", o->out, "directory to write (default JOB-trialN)");
  cmd->add_flag("--overwrite", o->overwrite, "replace a non-empty --out");
  cmd->callback([&context, o] { context.exit_code = Export(context, *o); });
}

}  // namespace nasforge::cli
