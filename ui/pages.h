// The dashboard's HTML, rendered on the server: the jobs list, a job's page, the login form and
// error pages. Plots are inline SVG (report/), so pages work without any script; ui.js (assets.h)
// only adds live updates. Every page names its CSS and script by path (the Content-Security-Policy
// forbids inline code). Pure functions, unit-tested.
#pragma once

#include <map>
#include <string>

#include "nasforge/v1/nasforge.pb.h"
#include "ui/job_view.h"

namespace nasforge::ui {

// Who is looking (shown in the header; empty name: authentication off).
struct Viewer {
  std::string name;
  std::string role;
  bool can_log_out = false;
};

// The jobs page. `filters` are the request's state/owner/name/label parameters (kept in the form
// and the paging links); `page_token` names this page, `next_token` the next ("" = last).
std::string JobsPage(const v1::ListJobsResponse& jobs,
                     const std::map<std::string, std::string>& filters,
                     const std::string& page_token, const Viewer& viewer, const std::string& error);

// A job's page. `query` holds x, y, sort, desc, state, where, offset as given; `error` is shown
// above the table (a bad filter, sort column or axis).
std::string JobPage(const JobView& view, const std::map<std::string, std::string>& query,
                    const Viewer& viewer);

std::string LoginPage(const std::string& next, const std::string& error);
std::string ErrorPage(int status, const std::string& message, const Viewer& viewer);

// Parameters of a job page's query, with defaults and checks (INVALID_ARGUMENT naming the
// parameter for a malformed offset).
struct JobPageParams {
  std::string x, y;
  TableQuery table;
};
absl::StatusOr<JobPageParams> ParseJobPageParams(const JobView& view,
                                                 const std::map<std::string, std::string>& query);

}  // namespace nasforge::ui
