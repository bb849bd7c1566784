// The dashboard's pages and their routes (routes.h).
#include "ui/routes.h"

#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "core/trial_state.h"
#include "report/candidate_table.h"
#include "report/format.h"

namespace nasforge::ui {
namespace {

// --- the pages ----------------------------------------------------------------------------

// The jobs page: filters (state, owner, name part, label k=v) and paging through ListJobs.
HttpResponse JobsList(const PageContext& c) {
  const HttpRequest& req = c.req;
  v1::ListJobsRequest lr;
  lr.set_page_size(50);
  lr.set_page_token(req.Query("page"));
  std::map<std::string, std::string> filters;
  std::string error;
  for (const char* k : {"state", "owner", "name", "label", "page"}) {
    if (!req.Query(k).empty()) filters[k] = req.Query(k);
  }
  if (!req.Query("state").empty()) {
    v1::JobState s = v1::JOB_STATE_UNSPECIFIED;
    if (v1::JobState_Parse("JOB_" + absl::AsciiStrToUpper(req.Query("state")), &s)) {
      lr.add_states(s);
    } else {
      error = "state: not a job state: '" + req.Query("state") + "'";
    }
  }
  lr.set_owner(req.Query("owner"));
  lr.set_name(req.Query("name"));
  if (!req.Query("label").empty()) {
    std::pair<std::string, std::string> kv =
        absl::StrSplit(req.Query("label"), absl::MaxSplits('=', 1));
    (*lr.mutable_labels())[kv.first] = kv.second;
  }
  v1::ListJobsResponse jobs;
  if (error.empty()) {
    auto listed = c.jobs->ListJobs(lr, c.who);
    if (listed.ok()) {
      jobs = *std::move(listed);
    } else {
      error = std::string(listed.status().message());
    }
  }
  return Html(error.empty() ? 200 : 400,
              JobsPage(jobs, filters, req.Query("page"), c.viewer, error));
}

// The job page: summary, plots, the candidate table (sorted, filtered, paged on the server).
HttpResponse Job(const PageContext& c) { return Html(200, JobPage(*c.job, c.req.query, c.viewer)); }

// The candidate table as CSV (the page's sort and filters, every row).
HttpResponse Csv(const PageContext& c) {
  const JobView& view = *c.job;
  const HttpRequest& req = c.req;
  TableQuery q;
  q.sort = req.Query("sort").empty() ? "trial" : req.Query("sort");
  q.desc = req.Query("desc") == "1";
  q.where = req.Query("where");
  q.state = req.Query("state");
  auto rows = view.AllRows(q);
  if (!rows.ok()) return HttpResponse::Text(400, std::string(rows.status().message()) + "\n");
  std::string out = report::CsvHeader(view.columns());
  for (const v1::Trial* t : *rows) out += report::CsvLine(*t, view.columns());
  HttpResponse r = HttpResponse::Text(200, std::move(out));
  r.content_type = "text/csv; charset=utf-8";
  r.headers.emplace_back("Content-Disposition", absl::StrCat("attachment; filename=\"",
                                                             view.job().id(), "-candidates.csv\""));
  return r;
}

// One plot alone: pareto.svg?x=&y=, progress.svg, curves.svg, choices.svg, importance.svg,
// value.svg?decision=params.lr.
HttpResponse Svg(const PageContext& c) {
  const JobView& view = *c.job;
  const HttpRequest& req = c.req;
  const std::string which = req.path.substr(req.path.rfind('/') + 1);
  std::string svg;
  if (which == "pareto.svg") {
    auto p = ParseJobPageParams(view, req.query);
    if (!p.ok()) return HttpResponse::Text(400, std::string(p.status().message()) + "\n");
    auto s = view.ParetoSvg(p->x, p->y);
    if (!s.ok()) return HttpResponse::Text(400, std::string(s.status().message()) + "\n");
    svg = *std::move(s);
  } else if (which == "progress.svg") {
    svg = view.BestSoFarSvg();
  } else if (which == "curves.svg") {
    svg = view.CurvesSvg();
  } else if (which == "choices.svg") {
    svg = view.ChoicesSvg();
  } else if (which == "importance.svg") {
    svg = view.ImportanceSvg();
  } else if (which == "value.svg") {
    auto v = view.ValueSvg(req.Query("decision"));
    if (!v.ok()) return HttpResponse::Text(400, std::string(v.status().message()) + "\n");
    svg = *std::move(v);
  } else {
    return HttpResponse::Text(404, "no plot " + which + "\n");
  }
  HttpResponse r = HttpResponse::Text(200, std::move(svg));
  r.content_type = "image/svg+xml";
  return r;
}

// The job's watch stream as server-sent events: one small JSON object per event (the page
// refetches what changed), starting with the snapshot.
HttpResponse Events(const PageContext& c) {
  const std::string& id = c.job_id;
  const Principal& who = c.who;
  auto job = c.jobs->GetJob(id, who);
  if (!job.ok())
    return HttpResponse::Text(HttpStatus(job.status()), std::string(job.status().message()) + "\n");
  HttpResponse r;
  r.content_type = "text/event-stream";
  r.stream = [jobs = c.jobs, id, who](std::shared_ptr<HttpStream> stream) {
    std::weak_ptr<HttpStream> weak = stream;
    auto handle = jobs->Subscribe(
        id,
        [weak](const v1::JobEvent& e) {
          auto s = weak.lock();
          if (!s) return;
          nlohmann::json j = {
              {"kind", e.kind()},
              {"job_state", report::ShortState(v1::JobState_Name(e.job().state()))}};
          if (e.has_trial()) {
            j["trial"] = e.trial().id();
            j["state"] = TrialStateLabel(e.trial().state());
          }
          s->Send(absl::StrCat("data: ", j.dump(), "\n\n"));
        },
        who);
    if (!handle.ok()) {
      stream->Send(absl::StrCat(
          "event: error\ndata: ", nlohmann::json(std::string(handle.status().message())).dump(),
          "\n\n"));
      stream->Close();
      return;
    }
    stream->OnClose([jobs, h = *handle] { jobs->Unsubscribe(h); });
  };
  return r;
}

// --- the table ------------------------------------------------------------------------------

void Builtins(NameRegistry<DashboardPage>& r) {
  r.AddBuiltin({"/", PageScope::kSite, JobsList});
  r.AddBuiltin({"/jobs/{id}", PageScope::kJob, Job});
  r.AddBuiltin({"/jobs/{id}/candidates.csv", PageScope::kJob, Csv});
  r.AddBuiltin({"/jobs/{id}/*.svg", PageScope::kJob, Svg});
  r.AddBuiltin({"/jobs/{id}/events", PageScope::kJobStream, Events});
}

}  // namespace

NameRegistry<DashboardPage>& DashboardPages() {
  return GlobalRegistry<DashboardPage>("dashboard page", &Builtins);
}

const DashboardPage* FindPage(const std::string& path, std::string* job_id) {
  NameRegistry<DashboardPage>& pages = DashboardPages();
  if (!absl::StartsWith(path, "/jobs/")) return pages.Find(path);
  std::vector<std::string> parts = absl::StrSplit(path.substr(6), '/');
  if (parts[0].empty() || parts.size() > 2) return nullptr;
  *job_id = parts[0];
  if (parts.size() == 1) return pages.Find("/jobs/{id}");
  const std::string& sub = parts[1];
  if (const DashboardPage* p = pages.Find("/jobs/{id}/" + sub)) return p;
  const size_t dot = sub.rfind('.');
  if (dot == std::string::npos || dot == 0) return nullptr;
  return pages.Find("/jobs/{id}/*" + sub.substr(dot));
}

int HttpStatus(const absl::Status& s) {
  switch (s.code()) {
    case absl::StatusCode::kInvalidArgument:
      return 400;
    case absl::StatusCode::kUnauthenticated:
      return 401;
    case absl::StatusCode::kPermissionDenied:
      return 403;
    case absl::StatusCode::kNotFound:
      return 404;
    case absl::StatusCode::kUnavailable:
      return 503;
    default:
      return 500;
  }
}

HttpResponse Html(int status, std::string body) {
  HttpResponse r = HttpResponse::Text(status, std::move(body));
  r.content_type = "text/html; charset=utf-8";
  return r;
}

HttpResponse Redirect(const std::string& to) {
  HttpResponse r = HttpResponse::Text(303, "");
  r.headers.emplace_back("Location", to);
  return r;
}

}  // namespace nasforge::ui
