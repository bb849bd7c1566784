// The dashboard's route table: a page registered from test code is served by the real server
// (HTTP on loopback) under its route, with the job's snapshot and the same visibility checks as
// the built-in pages; built-in routes and unknown paths resolve as the table says.
#include "ui/routes.h"

#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/controller/job_manager_fixture.h"
#include "tests/test_util.h"
#include "ui/ui_server.h"

namespace nasforge {
namespace {

using ::testing::HasSubstr;

TEST(RoutesTest, PathsResolveThroughTheTable) {
  std::string id;
  ASSERT_NE(ui::FindPage("/", &id), nullptr);
  EXPECT_EQ(ui::FindPage("/jobs/j1", &id)->name, "/jobs/{id}");
  EXPECT_EQ(id, "j1");
  EXPECT_EQ(ui::FindPage("/jobs/j2/candidates.csv", &id)->name, "/jobs/{id}/candidates.csv");
  EXPECT_EQ(ui::FindPage("/jobs/j2/curves.svg", &id)->name, "/jobs/{id}/*.svg");
  EXPECT_EQ(ui::FindPage("/jobs/j2/events", &id)->scope, ui::PageScope::kJobStream);
  EXPECT_EQ(ui::FindPage("/jobs/j2/nothing", &id), nullptr);
  EXPECT_EQ(ui::FindPage("/jobs/j2/a/b", &id), nullptr);
  EXPECT_EQ(ui::FindPage("/jobs/", &id), nullptr);
  EXPECT_EQ(ui::FindPage("/elsewhere", &id), nullptr);
  EXPECT_EQ(ui::DashboardPages().Add({"/", ui::PageScope::kSite, nullptr}).code(),
            absl::StatusCode::kAlreadyExists);
}

class DashboardPageTest : public JobManagerTest {};

TEST_F(DashboardPageTest, APageRegisteredFromTestCodeIsServedWithTheJobsSnapshot) {
  // A page of a job: how many candidates it has and its first objective, as plain text.
  ASSERT_TRUE(ui::DashboardPages()
                  .Add({"/jobs/{id}/summary.txt", ui::PageScope::kJob,
                        [](const ui::PageContext& c) {
                          return HttpResponse::Text(
                              200,
                              absl::StrCat("job ", c.job->job().id(), " trials ",
                                           c.job->trials().size(), " viewer ", c.who.name, "\n"));
                        }})
                  .ok());
  v1::JobSpec spec = TinySpec(3);
  v1::Job job = Submit(spec);
  std::string w = Register("w1");
  v1::LeaseTrialResponse l = Lease(w);
  ASSERT_TRUE(l.has_trial());
  ASSERT_TRUE(Report(w, l, 0.5).ok());

  Authenticator auth("");  // authentication off: the local admin
  auto server = ui::StartUiServer({.listen = "127.0.0.1:0"}, jm_.get(), &auth);
  ASSERT_TRUE(server.ok()) << server.status();
  const std::string base = absl::StrCat("http://127.0.0.1:", (*server)->port());
  EXPECT_EQ(testing::CommandOutput("curl -s " + base + "/jobs/" + job.id() + "/summary.txt"),
            absl::StrCat("job ", job.id(), " trials 1 viewer local\n"));
  // An unknown job: the server's check, before the page runs.
  EXPECT_EQ(testing::CommandOutput("curl -s -o /dev/null -w '%{http_code}' " + base +
                                   "/jobs/job-nope/summary.txt"),
            "404");
  // The built-in pages still answer through the same table.
  EXPECT_THAT(testing::CommandOutput("curl -s " + base + "/jobs/" + job.id() + "/candidates.csv"),
              HasSubstr("trial"));
  EXPECT_EQ(testing::CommandOutput("curl -s -o /dev/null -w '%{http_code}' " + base + "/jobs/" +
                                   job.id() + "/nothing"),
            "404");
}

}  // namespace
}  // namespace nasforge
