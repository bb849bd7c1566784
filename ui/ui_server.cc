#include "ui/ui_server.h"

#include <list>
#include <nlohmann/json.hpp>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "core/log.h"
#include "core/trial_state.h"
#include "report/candidate_table.h"
#include "report/format.h"
#include "ui/assets.h"
#include "ui/job_view.h"
#include "ui/pages.h"
#include "ui/routes.h"
#include "ui/sessions.h"

namespace nasforge::ui {
namespace {

constexpr char kCookie[] = "nf_session";
// Nothing inline: scripts and styles only from this server; forms only to it; never framed.
constexpr char kCsp[] =
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

// Only a path on this server (no "//host", no scheme): login's `next` cannot send anyone away.
std::string SafeNext(const std::string& next) {
  if (next.empty() || next[0] != '/' || absl::StartsWith(next, "//") ||
      next.find('\\') != std::string::npos || next.find_first_of("\r\n") != std::string::npos) {
    return "/";
  }
  return next;
}

// Snapshots of jobs, shared by every page view until the job changes (at most one rebuild per
// `refresh` while it runs; an ended job's snapshot stays until it is extended). Four at most.
class Views {
 public:
  Views(JobManager* jobs, absl::Duration refresh) : jobs_(jobs), refresh_(refresh) {}

  absl::StatusOr<std::shared_ptr<const JobView>> Get(const std::string& id, const Principal& who) {
    auto job = jobs_->GetJob(id, who);  // checks that `who` may see it
    if (!job.ok()) return job.status();
    const std::string sig =
        absl::StrCat(job->version(), "/", job->update_time().seconds(), ".",
                     job->update_time().nanos(), "/", job->counts().SerializeAsString());
    std::shared_ptr<Entry> e;
    {
      absl::MutexLock l(&mu_);
      for (auto it = lru_.begin(); it != lru_.end(); ++it) {
        if ((*it)->id == id) {
          e = *it;
          lru_.erase(it);
          break;
        }
      }
      if (!e) {
        e = std::make_shared<Entry>();
        e->id = id;
      }
      lru_.push_front(e);
      if (lru_.size() > 4) lru_.pop_back();
    }
    absl::MutexLock l(&e->mu);  // one build per job at a time
    const absl::Time now = absl::Now();
    const bool running = !JobTerminal(job->state());
    if (e->view) {
      const bool same = e->sig == sig;
      const absl::Duration age = now - e->built;
      // Running trials add curve points without changing the job: a running job's snapshot is
      // also rebuilt when it is a few refresh periods old.
      if (same && !(running && age > 4 * refresh_)) return e->view;
      if (!same && age < refresh_) return e->view;  // at most one rebuild per period
    }
    std::vector<v1::Trial> trials;
    v1::ListCandidatesRequest req;
    req.set_job_id(id);
    req.set_page_size(1000);
    do {
      auto page = jobs_->ListCandidates(req, who);
      if (!page.ok()) return page.status();
      for (auto& t : *page->mutable_trials()) trials.push_back(std::move(t));
      req.set_page_token(page->next_page_token());
    } while (!req.page_token().empty());
    e->view = std::make_shared<const JobView>(*std::move(job), std::move(trials));
    e->sig = sig;
    e->built = now;
    return e->view;
  }

 private:
  struct Entry {
    std::string id;
    absl::Mutex mu;
    std::shared_ptr<const JobView> view ABSL_GUARDED_BY(mu);
    std::string sig ABSL_GUARDED_BY(mu);
    absl::Time built ABSL_GUARDED_BY(mu);
  };
  JobManager* const jobs_;
  const absl::Duration refresh_;
  absl::Mutex mu_;
  std::list<std::shared_ptr<Entry>> lru_ ABSL_GUARDED_BY(mu_);
};

class UiApp {
 public:
  UiApp(JobManager* jobs, Authenticator* auth, absl::Duration refresh)
      : jobs_(jobs), auth_(auth), views_(jobs, refresh) {}

  HttpResponse Handle(const HttpRequest& req) {
    HttpResponse r = Route(req);
    r.headers.emplace_back("Content-Security-Policy", kCsp);
    r.headers.emplace_back("X-Content-Type-Options", "nosniff");
    r.headers.emplace_back("Referrer-Policy", "same-origin");
    if (r.status != 200 || !absl::StartsWith(req.path, "/static/")) {
      r.headers.emplace_back("Cache-Control", "no-store");
    }
    return r;
  }

 private:
  HttpResponse Route(const HttpRequest& req) {
    if (req.path == "/static/ui.css" || req.path == "/static/ui.js") {
      HttpResponse r =
          HttpResponse::Text(200, req.path == "/static/ui.css" ? kStyleCss : kScriptJs);
      r.content_type = req.path == "/static/ui.css" ? "text/css; charset=utf-8"
                                                    : "text/javascript; charset=utf-8";
      r.headers.emplace_back("Cache-Control", "max-age=300");
      return r;
    }
    if (req.path == "/login") return Login(req);
    if (req.path == "/logout") return Logout(req);
    if (req.method != "GET") return HttpResponse::Text(405, "this dashboard is read-only\n");
    const bool page = req.path == "/" || (absl::StartsWith(req.path, "/jobs/") &&
                                          req.path.find('/', 6) == std::string::npos);
    auto who = Identify(req);
    if (!who.ok()) {
      if (page) return Redirect("/login?next=" + UrlEncode(Target(req)));
      return HttpResponse::Text(401, std::string(who.status().message()) + "\n");
    }
    Viewer viewer;
    if (auth_->enabled()) viewer = {who->name, RoleName(who->role), !req.Cookie(kCookie).empty()};
    absl::Status may =
        auth_->enabled() ? Authorize(*who, "JobService", "ListCandidates") : absl::OkStatus();
    if (!may.ok()) return Html(403, ErrorPage(403, std::string(may.message()), viewer));
    std::string job_id;
    const DashboardPage* page_for = FindPage(req.path, &job_id);
    if (page_for == nullptr) return Html(404, ErrorPage(404, "no page " + req.path, viewer));
    PageContext c{req, *who, viewer, jobs_, job_id};
    std::shared_ptr<const JobView> view;
    if (page_for->scope == PageScope::kJob) {
      auto got = views_.Get(job_id, *who);
      if (!got.ok()) {
        const int status = HttpStatus(got.status());
        return Html(status, ErrorPage(status, std::string(got.status().message()), viewer));
      }
      view = *std::move(got);
      c.job = view.get();
    }
    return page_for->render(c);
  }

  static std::string Target(const HttpRequest& req) {
    std::string q;
    for (const auto& [k, v] : req.query) {
      absl::StrAppend(&q, q.empty() ? "?" : "&", UrlEncode(k), "=", UrlEncode(v));
    }
    return req.path + q;
  }

  absl::StatusOr<Principal> Identify(const HttpRequest& req) {
    if (!auth_->enabled()) return Principal::Local();
    std::string header = req.Header("authorization");
    if (header.empty()) {
      const std::string id = req.Cookie(kCookie);
      std::optional<std::string> token =
          id.empty() ? std::nullopt : sessions_.Token(id, absl::Now());
      if (!token)
        return absl::UnauthenticatedError("log in first: POST /login with your API token");
      header = "Bearer " + *token;
    }
    return auth_->Authenticate(header);
  }

  HttpResponse Login(const HttpRequest& req) {
    if (req.method == "GET") {
      if (!auth_->enabled()) return Redirect(SafeNext(req.Query("next")));
      return Html(200, LoginPage(SafeNext(req.Query("next")), ""));
    }
    if (req.method != "POST") return HttpResponse::Text(405, "GET or POST\n");
    auto form = ParseForm(req.body);
    const std::string next = SafeNext(form["next"]);
    if (!auth_->enabled()) return Redirect(next);
    const std::string token = form["token"];
    auto who = auth_->Authenticate("Bearer " + token);
    absl::Status st = who.ok() ? Authorize(*who, "JobService", "ListCandidates") : who.status();
    if (!st.ok()) {
      Log(LogLevel::kWarn, "ui_login_refused",
          {{"caller", who.ok() ? who->name : std::string("unauthenticated")},
           {"error", st.message()}});
      return Html(who.ok() ? 403 : 401, LoginPage(next, std::string(st.message())));
    }
    const std::string id = sessions_.Create(token, absl::Now());
    Log(LogLevel::kInfo, "ui_login", {{"caller", who->name}, {"role", RoleName(who->role)}});
    HttpResponse r = Redirect(next);
    r.headers.emplace_back("Set-Cookie", absl::StrCat(kCookie, "=", id,
                                                      "; Path=/; HttpOnly; SameSite=Strict; "
                                                      "Max-Age=43200",
                                                      req.tls ? "; Secure" : ""));
    return r;
  }

  HttpResponse Logout(const HttpRequest& req) {
    if (req.method != "POST") return HttpResponse::Text(405, "POST\n");
    sessions_.Remove(req.Cookie(kCookie));
    HttpResponse r = Redirect("/login");
    r.headers.emplace_back(
        "Set-Cookie", absl::StrCat(kCookie, "=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"));
    return r;
  }

  JobManager* const jobs_;
  Authenticator* const auth_;
  Sessions sessions_;
  Views views_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<HttpServer>> StartUiServer(const UiOptions& o, JobManager* jobs,
                                                          Authenticator* auth) {
  auto app = std::make_shared<UiApp>(jobs, auth, o.refresh);
  return StartHttpServer({.flag = "ui",
                          .listen = o.listen,
                          .tls_cert = o.tls_cert,
                          .tls_key = o.tls_key,
                          .insecure = o.insecure,
                          .io_timeout = absl::Seconds(30),
                          .threads = 4},
                         [app](const HttpRequest& req) { return app->Handle(req); });
}

}  // namespace nasforge::ui
