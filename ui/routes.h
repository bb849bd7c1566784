// The dashboard's pages, in one table: each page is a function from a request (who asks, the
// job's snapshot for a job's pages) to a response, and one line in Builtins() of routes.cc
// naming its route. The server (ui_server.cc) does what every page shares first: static files,
// login and logout, read-only methods, authentication and the `read` permission, and the job's
// snapshot (JobManager's visibility rules); then the page. Tests and embedders may Add() pages
// (docs/EXTENDING.md, "A dashboard page").
#pragma once

#include <functional>
#include <string>

#include "absl/status/status.h"
#include "controller/auth.h"
#include "controller/job_manager.h"
#include "core/registry.h"
#include "http/http_server.h"
#include "ui/job_view.h"
#include "ui/pages.h"

namespace nasforge::ui {

// What a page is given. `job` is set for kJob pages (the snapshot the caller may see).
struct PageContext {
  const HttpRequest& req;
  const Principal& who;
  const Viewer& viewer;
  JobManager* jobs;
  std::string job_id;            // kJob and kJobStream pages
  const JobView* job = nullptr;  // kJob pages
};

enum class PageScope {
  kSite,       // a path of its own ("/")
  kJob,        // under /jobs/ID: gets the job's snapshot
  kJobStream,  // under /jobs/ID, without a snapshot (a stream follows the job itself)
};

struct DashboardPage {
  // The route: "/" (kSite), or "/jobs/{id}" followed by "" (the job page), "/NAME" (exactly that
  // name) or "/*.EXT" (any name with that extension) for job pages.
  std::string name;
  PageScope scope = PageScope::kSite;
  std::function<HttpResponse(const PageContext&)> render;
};

// The process-wide table (built-ins on first use).
NameRegistry<DashboardPage>& DashboardPages();

// The page serving `path`, and for a job's page the job id; nullptr if none does.
const DashboardPage* FindPage(const std::string& path, std::string* job_id);

// Responses pages share.
int HttpStatus(const absl::Status& s);  // INVALID_ARGUMENT 400, NOT_FOUND 404, ...
HttpResponse Html(int status, std::string body);
HttpResponse Redirect(const std::string& to);

}  // namespace nasforge::ui
