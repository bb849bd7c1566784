// nasforge importance JOB: which architecture choices and hyperparameters matter for one of the
// job's objectives (the controller's GetImportance: core/importance.h over the succeeded
// candidates); --points writes the value-vs-objective points (CSV) for plots, --json the whole
// report.
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "cli/commands.h"
#include "cli/connection.h"
#include "cli/flags.h"
#include "cli/job_client.h"

namespace nasforge::cli {
namespace {

struct ImportanceOptions {
  std::string job, objective, points;
  int epoch = 0;
  bool json = false;
};

int Importance(CommandContext& c, const ImportanceOptions& o) {
  auto stub = ConnectJobService(c.connection);
  if (!stub.ok())
    return ReportError(c.io, stub.status(), "connecting to " + c.connection.controller);
  v1::GetImportanceRequest req;
  req.set_job_id(o.job);
  req.set_metric(o.objective);
  req.set_include_points(!o.points.empty());
  req.set_epoch(o.epoch);
  auto r = Call(**stub, &v1::JobService::Stub::GetImportance, req);
  if (!r.ok()) return ReportError(c.io, r.status(), "importance " + o.job);
  if (!o.points.empty()) {
    std::string csv = "decision,x,label,objective\n";
    for (const auto& p : r->points()) {
      absl::StrAppend(&csv, p.decision(), ",", p.x(), ",\"", p.label(), "\",", p.value(), "\n");
    }
    std::ofstream f(o.points, std::ios::trunc);
    f << csv;
    f.close();
    if (!f) {
      return ReportError(c.io,
                         absl::UnavailableError(absl::StrCat("--points: cannot write ", o.points)),
                         "importance " + o.job);
    }
  }
  if (o.json) {
    nlohmann::json j = {{"job", o.job},
                        {"objective", r->metric()},
                        {"maximize", r->maximize()},
                        {"trials", r->trials()},
                        {"decisions", nlohmann::json::array()}};
    for (const auto& d : r->decisions()) {
      j["decisions"].push_back({{"name", d.decision()},
                                {"importance", d.importance()},
                                {"omega_squared", d.omega_squared()},
                                {"observations", d.observations()},
                                {"best", d.best()},
                                {"ordered", d.ordered()},
                                {"log", d.log()}});
    }
    c.io.out << j.dump(1) << "\n";
    return kExitOk;
  }
  c.io.out << absl::StrFormat("importance for %s (%s), from %d succeeded trials of %s\n",
                              r->metric(), r->maximize() ? "max" : "min", r->trials(), o.job);
  c.io.out << absl::StrFormat("%-28s %10s %7s  %s\n", "decision", "importance", "trials",
                              "best value (group mean)");
  for (const auto& d : r->decisions()) {
    c.io.out << absl::StrFormat("%-28s %10.3f %7d  %s\n", d.decision(), d.importance(),
                                d.observations(), d.best());
  }
  return kExitOk;
}

}  // namespace

void AddImportanceCommand(CLI::App& app, CommandContext& c) {
  auto o = std::make_shared<ImportanceOptions>();
  CLI::App* cmd = app.add_subcommand(
      "importance", "which architecture choices and hyperparameters matter for an objective");
  cmd->add_option("JOB", o->job, "job id")->required();
  cmd->add_option("--objective", o->objective, "a metric (default: the job's first objective)");
  cmd->add_option("--epoch", o->epoch,
                  "judge by the validation value at this epoch of every trial's curve, the "
                  "early-stopped ones included (an early-stopping rung)")
      ->check(IntAtLeast(0));
  cmd->add_option("--points", o->points,
                  "write each trial's decision values and objective as CSV (for plots)");
  cmd->add_flag("--json", o->json, "print the report as JSON");
  cmd->callback([&c, o] { c.exit_code = Importance(c, *o); });
}

}  // namespace nasforge::cli
