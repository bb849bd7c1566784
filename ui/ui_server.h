// The controller's web dashboard (read-only): an HTTP(S) server (http/http_server.h) on its own
// address, showing what the JobService shows, with the same tokens and the same visibility rules
// (a `read` or `submit` token sees its owner's jobs, `admin` every job, `worker` nothing).
//
// With authentication on, a browser logs in once with its API token (POST /login); the server
// keeps the token in memory and gives the browser a random session id in an HttpOnly,
// SameSite=Strict cookie (Secure over HTTPS); every request is checked against the token file
// again, so a revoked token logs its sessions out. Scripts may send "Authorization: Bearer".
//
// Pages: the table in ui/routes.cc (/, /jobs/ID, /jobs/ID/candidates.csv, /jobs/ID/*.svg,
// /jobs/ID/events); the server itself answers /login, /logout and /static/ui.{css,js}.
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "controller/auth.h"
#include "controller/job_manager.h"
#include "http/http_server.h"

namespace nasforge::ui {

struct UiOptions {
  std::string listen;  // HOST:PORT
  std::string tls_cert, tls_key;
  bool insecure = false;  // plain HTTP on an address other than loopback
  // A job's snapshot is rebuilt at most this often while it runs (the page refreshes on events).
  absl::Duration refresh = absl::Milliseconds(500);
};

// `jobs` and `auth` must outlive the server (destroy it first: its open event streams
// unsubscribe from `jobs` as they close).
absl::StatusOr<std::unique_ptr<HttpServer>> StartUiServer(const UiOptions& options,
                                                          JobManager* jobs, Authenticator* auth);

}  // namespace nasforge::ui
