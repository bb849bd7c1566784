// The dashboard's pages: escaping of everything users type (names, labels, filters), no inline
// script or style (the Content-Security-Policy forbids them), links that keep the query, and
// the sessions behind the login.
#include "ui/pages.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <regex>

#include "ui/sessions.h"

namespace nasforge::ui {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

v1::Job Hostile() {
  v1::Job j;
  j.set_id("job-1");
  j.set_owner("<b>eve</b>");
  j.mutable_spec()->set_name("<script>alert(1)</script>");
  j.mutable_spec()->mutable_strategy()->set_name("\"><img src=x onerror=alert(2)>");
  auto* o = j.mutable_spec()->add_objectives();
  o->set_metric("accuracy");
  o->set_direction(v1::MAXIMIZE);
  j.set_state(v1::JOB_RUNNING);
  j.mutable_spec()->mutable_budget()->set_max_trials(10);
  return j;
}

void NoInlineCode(const std::string& html) {
  EXPECT_THAT(html, Not(HasSubstr("<script>")));
  EXPECT_THAT(html, Not(HasSubstr(" style=")));
  EXPECT_THAT(html, Not(HasSubstr("<style")));
  EXPECT_FALSE(std::regex_search(html, std::regex("<[^>]* on[a-z]+=")))
      << "no inline event handlers";
}

TEST(PagesTest, JobPageEscapesWhatUsersWrote) {
  v1::Trial t;
  t.set_id(0);
  t.set_state(v1::TRIAL_FAILED);
  t.set_error("<iframe>boom</iframe>");
  JobView view(Hostile(), {t});
  std::string html = JobPage(view, {{"where", "\"><script>x</script>"}}, {"bob", "read", true});
  NoInlineCode(html);
  EXPECT_THAT(html, HasSubstr("&lt;script&gt;alert(1)&lt;/script&gt;"));
  EXPECT_THAT(html, Not(HasSubstr("<img src=x")));
  EXPECT_THAT(html, Not(HasSubstr("<iframe>")));
  EXPECT_THAT(html, HasSubstr("src=\"/static/ui.js?v="));
  EXPECT_THAT(html, HasSubstr("data-live=\"/jobs/job-1/events\""));
  EXPECT_THAT(html, HasSubstr("where:")) << "the bad filter is named, not a crash";
}

TEST(PagesTest, SortLinksKeepTheQueryAndRestartPaging) {
  std::vector<v1::Trial> trials(3);
  for (int i = 0; i < 3; ++i) {
    trials[i].set_id(i);
    trials[i].set_state(v1::TRIAL_SUCCEEDED);
    (*trials[i].mutable_metrics())["accuracy"] = 0.1 * i;
  }
  JobView view(Hostile(), trials);
  std::string html = JobPage(view, {{"where", "accuracy>=0.1"}, {"offset", "0"}}, {});
  EXPECT_THAT(
      html, HasSubstr("href=\"/jobs/job-1?desc=1&amp;sort=accuracy&amp;where=accuracy%3E%3D0.1\""));
  EXPECT_THAT(html, HasSubstr("2 matching trials"));
  EXPECT_THAT(html, HasSubstr("/jobs/job-1/candidates.csv?"));
}

TEST(PagesTest, OffsetMustBeANumber) {
  JobView view(Hostile(), {});
  auto p = ParseJobPageParams(view, {{"offset", "-5"}});
  EXPECT_EQ(p.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(p.status().message()), HasSubstr("offset:"));
  EXPECT_THAT(JobPage(view, {{"offset", "x"}}, {}), HasSubstr("offset:"));
}

TEST(PagesTest, JobsPageEscapesAndPages) {
  v1::ListJobsResponse jobs;
  *jobs.add_jobs() = Hostile();
  jobs.set_next_page_token("50");
  std::string html = JobsPage(jobs, {{"name", "<x>"}}, "", {"alice", "admin", true}, "");
  NoInlineCode(html);
  EXPECT_THAT(html, HasSubstr("&lt;b&gt;eve&lt;/b&gt;"));
  EXPECT_THAT(html, HasSubstr("value=\"&lt;x&gt;\""));
  EXPECT_THAT(html, HasSubstr("rel=\"next\" href=\"/?name=%3Cx%3E&amp;page=50\""));
  EXPECT_THAT(html, HasSubstr("0 / 10"));
  v1::ListJobsResponse none;
  EXPECT_THAT(JobsPage(none, {}, "", {}, ""), HasSubstr("No jobs match"));
}

TEST(PagesTest, LoginPageKeepsNextEscaped) {
  std::string html = LoginPage("/jobs/x?\"><script>", "bad token");
  NoInlineCode(html);
  EXPECT_THAT(html, HasSubstr("bad token"));
  EXPECT_THAT(html, HasSubstr("type=\"password\""));
}

TEST(SessionsTest, ExpireAndEvict) {
  Sessions s(absl::Minutes(10), 2);
  const absl::Time t0 = absl::FromUnixSeconds(1000);
  std::string a = s.Create("tok-a", t0);
  EXPECT_EQ(a.size(), 64u);
  EXPECT_EQ(s.Token(a, t0 + absl::Minutes(9)).value_or(""), "tok-a");
  EXPECT_FALSE(s.Token(a, t0 + absl::Minutes(10)).has_value()) << "expired";
  std::string b = s.Create("tok-b", t0 + absl::Minutes(1));
  std::string c = s.Create("tok-c", t0 + absl::Minutes(2));
  EXPECT_FALSE(s.Token(a, t0 + absl::Minutes(3)).has_value()) << "oldest evicted at the limit";
  EXPECT_EQ(s.Token(c, t0 + absl::Minutes(3)).value_or(""), "tok-c");
  s.Remove(c);
  EXPECT_FALSE(s.Token(c, t0 + absl::Minutes(3)).has_value());
  EXPECT_FALSE(s.Token("", t0).has_value());
  EXPECT_NE(b, c);
}

}  // namespace
}  // namespace nasforge::ui
