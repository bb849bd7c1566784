// nasforge pareto JOB: the Pareto-optimal candidates of a job (the controller's QueryPareto) under
// the flags' objectives, constraints, hardware target and variants; --plot also writes the
// scatter of every finished candidate as SVG, the front highlighted.
#include <cmath>
#include <cstdint>
#include <fstream>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "cli/commands.h"
#include "cli/connection.h"
#include "cli/flags.h"
#include "cli/job_client.h"
#include "core/pareto.h"
#include "core/search_space.h"
#include "report/format.h"
#include "report/pareto_plot.h"

namespace nasforge::cli {
using namespace ::nasforge::report;  // NOLINT: the shared formatting of jobs, tables and plots
namespace {

using Stub = v1::JobService::Stub;

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
  auto connected = ConnectJobService(c.connection);
  if (!connected.ok()) {
    return ReportError(c.io, connected.status(), "connecting to " + c.connection.controller);
  }
  Stub& stub = **connected;
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
}

}  // namespace

void AddParetoCommand(CLI::App& app, CommandContext& c) {
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

}  // namespace nasforge::cli
