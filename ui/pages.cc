#include "ui/pages.h"

#include <cmath>
#include <cstdint>
#include <cstdlib>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "core/search_space.h"
#include "core/trial_state.h"
#include "http/http_server.h"
#include "report/candidate_table.h"
#include "report/format.h"
#include "report/svg.h"
#include "ui/assets.h"

namespace nasforge::ui {
namespace {

using report::XmlEscape;

std::string Head(const std::string& title, const std::string& body_attrs) {
  return absl::StrCat(
      "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
      "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
      "<title>",
      XmlEscape(title), " - nasforge</title><link rel=\"stylesheet\" href=\"/static/ui.css",
      AssetVersion(), "\"><link rel=\"icon\" href=\"data:,\"><script src=\"/static/ui.js",
      AssetVersion(), "\" defer></script></head>\n<body", body_attrs, ">\n");
}

std::string Header(const Viewer& v) {
  std::string s = "<header><a class=\"brand\" href=\"/\">nasforge</a><a href=\"/\">jobs</a>";
  if (!v.name.empty()) {
    absl::StrAppend(&s, "<span class=\"viewer\">", XmlEscape(v.name), " (", XmlEscape(v.role),
                    ")</span>");
  }
  if (v.can_log_out) {
    s +=
        "<form class=\"logout\" method=\"post\" action=\"/logout\"><button>log out</button></form>";
  }
  return s + "</header>\n";
}

// The query string of `params` with `changes` applied (an empty value drops the key).
std::string Link(const std::string& path, std::map<std::string, std::string> params,
                 const std::map<std::string, std::string>& changes) {
  for (const auto& [k, v] : changes) {
    if (v.empty()) {
      params.erase(k);
    } else {
      params[k] = v;
    }
  }
  std::string q;
  for (const auto& [k, v] : params) {
    if (v.empty()) continue;
    absl::StrAppend(&q, q.empty() ? "?" : "&", UrlEncode(k), "=", UrlEncode(v));
  }
  return XmlEscape(path + q);
}

std::string Time(const google::protobuf::Timestamp& t) {
  if (t.seconds() == 0) return "-";
  return absl::FormatTime("%Y-%m-%d %H:%M:%S UTC", absl::FromUnixSeconds(t.seconds()),
                          absl::UTCTimeZone());
}

// 0.912345 -> "0.912345", 13141920 -> "13,141,920", inf -> "inf".
std::string Number(double v) {
  if (!std::isfinite(v)) return absl::StrCat(v);
  if (v == std::floor(v) && std::abs(v) >= 1e4 && std::abs(v) < 1e15) {
    return Thousands(static_cast<int64_t>(v));
  }
  return absl::StrFormat("%.6g", v);
}

std::string JobState(v1::JobState s) { return report::ShortState(v1::JobState_Name(s)); }

std::string Progress(const v1::Job& job) {
  const auto& c = job.counts();
  const int64_t done = c.succeeded() + c.stopped() + c.failed() + c.cancelled() - c.warm_started();
  const int64_t max = job.spec().budget().max_trials();
  return absl::StrFormat(
      "<progress max=\"%d\" value=\"%d\"></progress> <span class=\"done\">%s / %s</span>",
      std::max<int64_t>(max, 1), std::min(done, std::max<int64_t>(max, 1)), Thousands(done),
      Thousands(max));
}

std::string Select(const std::string& name, const std::vector<std::string>& options,
                   const std::string& chosen, bool autosubmit, bool allow_empty) {
  std::string s =
      absl::StrCat("<select name=\"", name, "\"", autosubmit ? " data-autosubmit=\"1\"" : "", ">");
  if (allow_empty) s += "<option value=\"\">any</option>";
  for (const auto& o : options) {
    absl::StrAppend(&s, "<option", o == chosen ? " selected" : "", ">", XmlEscape(o), "</option>");
  }
  return s + "</select>";
}

std::string Hidden(const std::map<std::string, std::string>& params,
                   const std::vector<std::string>& keys) {
  std::string s;
  for (const auto& k : keys) {
    auto it = params.find(k);
    if (it == params.end() || it->second.empty()) continue;
    absl::StrAppend(&s, "<input type=\"hidden\" name=\"", XmlEscape(k), "\" value=\"",
                    XmlEscape(it->second), "\">");
  }
  return s;
}

std::string Summary(const JobView& view) {
  const v1::Job& job = view.job();
  const auto& c = job.counts();
  std::string s = "<section id=\"summary\" class=\"live\"><dl>";
  auto row = [&](const std::string& k, const std::string& v) {
    absl::StrAppend(&s, "<dt>", k, "</dt><dd class=\"", k, "\">", v, "</dd>");
  };
  row("state", absl::StrCat("<span class=\"state ", JobState(job.state()), "\">",
                            JobState(job.state()), "</span>"));
  row("progress", Progress(job));
  row("trials",
      absl::StrFormat(
          "%d queued, %d running, %d succeeded, %d stopped early, %d failed, %d "
          "cancelled%s%s",
          c.queued(), c.running(), c.succeeded(), c.stopped(), c.failed(), c.cancelled(),
          c.rejected_by_cost() + c.rejected_by_latency() > 0
              ? absl::StrCat(", ", c.rejected_by_cost() + c.rejected_by_latency(),
                             " rejected by bounds")
              : "",
          c.warm_started() > 0 ? absl::StrCat(", ", c.warm_started(), " reused from earlier jobs")
                               : ""));
  std::vector<std::string> objectives;
  for (const auto& o : job.spec().objectives()) {
    objectives.push_back(
        absl::StrCat(o.metric(), o.direction() == v1::MAXIMIZE ? " (max)" : " (min)"));
  }
  row("objectives", XmlEscape(absl::StrJoin(objectives, ", ")));
  if (!job.spec().constraints().empty()) {
    std::vector<std::string> cons;
    for (const auto& k : job.spec().constraints()) {
      if (k.has_lower()) cons.push_back(absl::StrCat(k.metric(), " >= ", Number(k.lower())));
      if (k.has_upper()) cons.push_back(absl::StrCat(k.metric(), " <= ", Number(k.upper())));
    }
    row("constraints", XmlEscape(absl::StrJoin(cons, ", ")));
  }
  row("best", job.has_best_objective() ? Number(job.best_objective()) : "-");
  row("strategy", XmlEscape(job.spec().strategy().name()));
  row("owner", XmlEscape(job.owner()));
  row("created", Time(job.create_time()));
  if (job.has_end_time()) row("ended", Time(job.end_time()));
  if (!job.error().empty()) row("error", XmlEscape(job.error()));
  const auto front = view.Front();
  row("front", absl::StrCat(front.size(), front.size() == 1 ? " candidate" : " candidates"));
  if (front.empty() && c.succeeded() > 0 && !job.spec().constraints().empty()) {
    row("note", "no succeeded candidate meets every constraint of the job");
  }
  return s + "</dl></section>\n";
}

std::string CandidatesTable(const JobView& view, const std::map<std::string, std::string>& query,
                            const JobPageParams& p, const std::string& base,
                            const std::string& error) {
  std::string s = "<section id=\"candidates\" class=\"live\"><h2>Candidates</h2>";
  // The filter form keeps the plot axes; paging restarts.
  absl::StrAppend(
      &s, "<form class=\"filter\" method=\"get\" action=\"", XmlEscape(base), "\">",
      Hidden(query, {"x", "y", "sort", "desc"}),
      "<label>where <input name=\"where\" size=\"32\" placeholder=\"accuracy>=0.9,macs<=3e8\" "
      "value=\"",
      XmlEscape(p.table.where), "\"></label> <label>state ");
  std::vector<std::string> states;
  for (v1::TrialState st : TrialStates()) states.push_back(TrialStateLabel(st));
  absl::StrAppend(&s, Select("state", states, p.table.state, false, true),
                  "</label> <button>filter</button> <a class=\"csv\" href=\"",
                  Link(base + "/candidates.csv", query, {{"offset", ""}, {"x", ""}, {"y", ""}}),
                  "\" download>download CSV</a></form>\n");
  if (!error.empty()) {
    absl::StrAppend(&s, "<p class=\"error\" role=\"alert\">", XmlEscape(error), "</p>");
    return s + "</section>\n";
  }
  auto page = view.Table(p.table);
  if (!page.ok()) {
    absl::StrAppend(&s, "<p class=\"error\" role=\"alert\">",
                    XmlEscape(std::string(page.status().message())), "</p>");
    return s + "</section>\n";
  }
  const size_t first = page->rows.empty() ? 0 : p.table.offset + 1;
  absl::StrAppend(&s, "<p class=\"matched\">", Thousands(first), "-",
                  Thousands(p.table.offset + page->rows.size()), " of ", Thousands(page->matched),
                  page->matched == view.trials().size() ? " trials" : " matching trials",
                  "; sorted by ", XmlEscape(p.table.sort), p.table.desc ? " (descending)" : "",
                  "</p>\n");
  std::set<int64_t> front;
  for (const v1::Trial* t : view.Front()) front.insert(t->id());
  s += "<table class=\"trials\"><thead><tr>";
  std::vector<std::string> cols;
  for (const auto& c : view.columns()) {
    if (c != "arch_hash") cols.push_back(c);
  }
  for (const auto& c : cols) {
    const bool sorted = c == p.table.sort;
    const bool next_desc =
        sorted ? !p.table.desc : (c != "trial" && c != "state" && c != "arch" && c != "worker_id");
    absl::StrAppend(
        &s, "<th", sorted ? " aria-sort=\"" : "",
        sorted ? (p.table.desc ? "descending\"" : "ascending\"") : "", "><a href=\"",
        Link(base, query, {{"sort", c}, {"desc", next_desc ? "1" : ""}, {"offset", ""}}), "\">",
        XmlEscape(c), sorted ? (p.table.desc ? " &#9660;" : " &#9650;") : "", "</a></th>");
  }
  s += "</tr></thead><tbody>\n";
  for (const v1::Trial* t : page->rows) {
    absl::StrAppend(&s, "<tr data-trial=\"", t->id(), "\"",
                    front.count(t->id()) ? " class=\"front\"" : "", ">");
    for (const auto& c : cols) {
      std::string cell = report::CandidateCell(*t, c);
      if (c == "state") {
        std::string title = t->error();
        if (!t->warm_start_from().empty()) title = "reused from " + t->warm_start_from();
        absl::StrAppend(&s, "<td class=\"state ", cell, "\"",
                        title.empty() ? "" : absl::StrCat(" title=\"", XmlEscape(title), "\""), ">",
                        cell, t->warm_start_from().empty() ? "" : " (reused)", "</td>");
        continue;
      }
      double v;
      const bool num = absl::SimpleAtod(cell, &v);
      absl::StrAppend(&s, "<td", num ? " class=\"num\"" : "", ">",
                      cell.empty() ? "-" : XmlEscape(num && c != "trial" ? Number(v) : cell),
                      "</td>");
    }
    s += "</tr>\n";
  }
  s += "</tbody></table>\n<nav class=\"pager\">";
  if (p.table.offset > 0) {
    const size_t prev = p.table.offset > p.table.limit ? p.table.offset - p.table.limit : 0;
    absl::StrAppend(&s, "<a rel=\"prev\" href=\"",
                    Link(base, query, {{"offset", prev ? absl::StrCat(prev) : ""}}),
                    "\">&larr; previous</a> ");
  }
  if (p.table.offset + page->rows.size() < page->matched) {
    absl::StrAppend(&s, "<a rel=\"next\" href=\"",
                    Link(base, query, {{"offset", absl::StrCat(p.table.offset + p.table.limit)}}),
                    "\">next &rarr;</a>");
  }
  return s + "</nav></section>\n";
}

}  // namespace

absl::StatusOr<JobPageParams> ParseJobPageParams(const JobView& view,
                                                 const std::map<std::string, std::string>& q) {
  auto get = [&](const char* k) {
    auto it = q.find(k);
    return it == q.end() ? std::string() : it->second;
  };
  JobPageParams p;
  const auto& metrics = view.axis_metrics();
  p.x = get("x");
  p.y = get("y");
  if (p.x.empty()) p.x = metrics.empty() ? "macs" : metrics[0];
  if (p.y.empty()) {
    for (const auto& m : metrics) {
      if (m != p.x) {
        p.y = m;
        break;
      }
    }
  }
  p.table.sort = get("sort").empty() ? "trial" : get("sort");
  p.table.desc = get("desc") == "1";
  p.table.where = get("where");
  p.table.state = get("state");
  if (!get("offset").empty() && !absl::SimpleAtoi(get("offset"), &p.table.offset)) {
    return absl::InvalidArgumentError("offset: not a non-negative whole number: '" + get("offset") +
                                      "'");
  }
  return p;
}

std::string JobPage(const JobView& view, const std::map<std::string, std::string>& query,
                    const Viewer& viewer) {
  const v1::Job& job = view.job();
  const std::string base = "/jobs/" + UrlEncode(job.id());
  const bool ended = JobTerminal(job.state());
  std::string s = Head(job.spec().name().empty() ? job.id() : job.spec().name(),
                       absl::StrCat(" data-live=\"", XmlEscape(base), "/events\"",
                                    ended ? " data-ended=\"1\"" : ""));
  s += Header(viewer);
  absl::StrAppend(&s, "<main><h1>", XmlEscape(job.spec().name()), " <small>", XmlEscape(job.id()),
                  "</small> <span id=\"live-status\" class=\"live-status\">",
                  ended ? "ended" : "connecting", "</span></h1>\n");
  s += Summary(view);
  std::string error;
  auto p = ParseJobPageParams(view, query);
  JobPageParams params = p.ok() ? *p : JobPageParams{};
  if (!p.ok()) error = std::string(p.status().message());
  s += "<section id=\"plots\" class=\"live\">";
  absl::StrAppend(&s, "<form class=\"axes\" method=\"get\" action=\"", XmlEscape(base), "\">",
                  Hidden(query, {"sort", "desc", "where", "state"}), "<label>x ",
                  Select("x", view.axis_metrics(), params.x, true, false), "</label> <label>y ",
                  Select("y", view.axis_metrics(), params.y, true, false),
                  "</label> <noscript><button>plot</button></noscript></form>\n");
  auto pareto = view.ParetoSvg(params.x, params.y);
  absl::StrAppend(&s, "<div class=\"plot\" id=\"pareto\">",
                  pareto.ok()
                      ? *pareto
                      : absl::StrCat("<p class=\"error\" role=\"alert\">",
                                     XmlEscape(std::string(pareto.status().message())), "</p>"),
                  "</div>\n");
  absl::StrAppend(&s, "<div class=\"plot\" id=\"progress\">", view.BestSoFarSvg(), "</div>\n");
  absl::StrAppend(&s, "<div class=\"plot\" id=\"curves\">", view.CurvesSvg(), "</div>\n");
  absl::StrAppend(&s, "<div class=\"plot\" id=\"choices\">", view.ChoicesSvg(), "</div>\n");
  s += "</section>\n";
  // What matters: each decision's share of the primary objective's variance, and the values
  // of the hyperparameters (or the most important choices) against it.
  absl::StrAppend(&s, "<section id=\"importance\" class=\"live\"><h2>What matters</h2>",
                  "<div class=\"plot\" id=\"importance-bars\">", view.ImportanceSvg(), "</div>\n");
  for (const std::string& d : view.ValuePlots()) {
    auto v = view.ValueSvg(d);
    if (!v.ok()) continue;
    absl::StrAppend(&s, "<div class=\"plot value\" data-decision=\"", XmlEscape(d), "\">", *v,
                    "</div>\n");
  }
  s += "</section>\n";
  s += CandidatesTable(view, query, params, base, error);
  return s + "</main></body></html>\n";
}

std::string JobsPage(const v1::ListJobsResponse& jobs,
                     const std::map<std::string, std::string>& filters,
                     const std::string& page_token, const Viewer& viewer,
                     const std::string& error) {
  std::string s = Head("jobs", " data-poll=\"5000\"");
  s += Header(viewer);
  auto get = [&](const char* k) {
    auto it = filters.find(k);
    return it == filters.end() ? std::string() : it->second;
  };
  s += "<main><h1>Jobs</h1><form class=\"filter\" method=\"get\" action=\"/\"><label>state ";
  std::vector<std::string> states;
  for (auto st : {v1::JOB_RUNNING, v1::JOB_SUCCEEDED, v1::JOB_FAILED, v1::JOB_CANCELLED}) {
    states.push_back(JobState(st));
  }
  absl::StrAppend(
      &s, Select("state", states, get("state"), false, true),
      "</label> <label>owner <input name=\"owner\" size=\"12\" value=\"", XmlEscape(get("owner")),
      "\"></label> <label>name <input name=\"name\" size=\"16\" value=\"", XmlEscape(get("name")),
      "\"></label> <label>label <input name=\"label\" size=\"16\" "
      "placeholder=\"team=vision\" value=\"",
      XmlEscape(get("label")), "\"></label> <button>filter</button></form>\n");
  s += "<section id=\"jobs\" class=\"live\">";
  if (!error.empty()) {
    absl::StrAppend(&s, "<p class=\"error\" role=\"alert\">", XmlEscape(error), "</p>");
  } else if (jobs.jobs().empty()) {
    s += "<p class=\"empty\">No jobs match. Submit one with <code>nasforge submit "
         "SPEC.yaml</code>.</p>";
  } else {
    s += "<table class=\"jobs\"><thead><tr><th>job</th><th>name</th><th>owner</th><th>state</th>"
         "<th>progress</th><th>best</th><th>strategy</th><th>created</th></tr></thead><tbody>\n";
    for (const auto& j : jobs.jobs()) {
      std::string best = "-";
      if (j.has_best_objective() && !j.spec().objectives().empty()) {
        best = absl::StrCat(XmlEscape(j.spec().objectives(0).metric()), " ",
                            Number(j.best_objective()));
      }
      absl::StrAppend(&s, "<tr data-job=\"", XmlEscape(j.id()), "\"><td><a href=\"/jobs/",
                      XmlEscape(UrlEncode(j.id())), "\">", XmlEscape(j.id()), "</a></td><td>",
                      XmlEscape(j.spec().name()), "</td><td>", XmlEscape(j.owner()),
                      "</td><td class=\"state ", JobState(j.state()), "\">", JobState(j.state()),
                      "</td><td>", Progress(j), "</td><td>", best, "</td><td>",
                      XmlEscape(j.spec().strategy().name()), "</td><td>", Time(j.create_time()),
                      "</td></tr>\n");
    }
    s += "</tbody></table>\n";
  }
  s += "<nav class=\"pager\">";
  if (!page_token.empty()) {
    absl::StrAppend(&s, "<a rel=\"first\" href=\"", Link("/", filters, {{"page", ""}}),
                    "\">&larr; newest</a> ");
  }
  if (!jobs.next_page_token().empty()) {
    absl::StrAppend(&s, "<a rel=\"next\" href=\"",
                    Link("/", filters, {{"page", jobs.next_page_token()}}), "\">older &rarr;</a>");
  }
  return s + "</nav></section></main></body></html>\n";
}

std::string LoginPage(const std::string& next, const std::string& error) {
  std::string s = Head("log in", "");
  s +=
      "<header><span class=\"brand\">nasforge</span></header><main class=\"login\"><h1>Log in</h1>";
  if (!error.empty()) {
    absl::StrAppend(&s, "<p class=\"error\" role=\"alert\">", XmlEscape(error), "</p>");
  }
  absl::StrAppend(
      &s, "<form method=\"post\" action=\"/login\"><input type=\"hidden\" name=\"next\" value=\"",
      XmlEscape(next),
      "\"><label>API token <input type=\"password\" name=\"token\" autocomplete=\"off\" "
      "size=\"70\" autofocus></label> <button>log in</button></form>"
      "<p>The same token as the CLI's (<code>nasforge token create NAME --role read</code>); any "
      "role but worker may look. The page keeps a session cookie, not the token.</p></main>"
      "</body></html>\n");
  return s;
}

std::string ErrorPage(int status, const std::string& message, const Viewer& viewer) {
  std::string s = Head(absl::StrCat("error ", status), "");
  s += Header(viewer);
  absl::StrAppend(&s, "<main><h1>", status, "</h1><p class=\"error\" role=\"alert\">",
                  XmlEscape(message),
                  "</p><p><a href=\"/\">all jobs</a></p></main></body></html>\n");
  return s;
}

}  // namespace nasforge::ui
