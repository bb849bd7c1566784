// JobView: the dashboard's table (server-side sort, filter, paging), plots' inputs (the front,
// sampling with notes, non-finite and missing metrics), and the per-choice summary.
#include "ui/job_view.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>

#include "report/charts.h"

namespace nasforge::ui {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

v1::Job Job(int objectives = 2) {
  v1::Job j;
  j.set_id("job-1");
  j.mutable_spec()->set_name("test");
  auto* o = j.mutable_spec()->add_objectives();
  o->set_metric("accuracy");
  o->set_direction(v1::MAXIMIZE);
  if (objectives > 1) {
    o = j.mutable_spec()->add_objectives();
    o->set_metric("macs");
    o->set_direction(v1::MINIMIZE);
  }
  j.set_state(v1::JOB_SUCCEEDED);
  return j;
}

v1::Trial Trial(int id, double acc, double macs, v1::TrialState state = v1::TRIAL_SUCCEEDED) {
  v1::Trial t;
  t.set_id(id);
  t.set_state(state);
  if (!std::isnan(acc)) (*t.mutable_metrics())["accuracy"] = acc;
  (*t.mutable_metrics())["macs"] = macs;
  auto* s = t.mutable_architecture()->mutable_mbconv()->add_stages();
  s->set_kernel(id % 2 ? 5 : 3);
  s->set_channels(16);
  return t;
}

TEST(JobViewTest, SortsFiltersAndPagesOnTheServer) {
  std::vector<v1::Trial> trials;
  for (int i = 0; i < 250; ++i) trials.push_back(Trial(i, (i * 37 % 250) / 250.0, 1000 + i));
  trials.push_back(Trial(250, NAN, 5));  // no accuracy: last whichever the direction
  JobView view(Job(), trials);
  TableQuery q;
  q.sort = "accuracy";
  q.desc = true;
  q.limit = 10;
  auto page = view.Table(q);
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_EQ(page->matched, 251u);
  ASSERT_EQ(page->rows.size(), 10u);
  EXPECT_DOUBLE_EQ(page->rows[0]->metrics().at("accuracy"), 249 / 250.0);
  for (size_t i = 1; i < page->rows.size(); ++i) {
    EXPECT_GE(page->rows[i - 1]->metrics().at("accuracy"), page->rows[i]->metrics().at("accuracy"));
  }
  q.offset = 250;
  page = view.Table(q);
  ASSERT_EQ(page->rows.size(), 1u);
  EXPECT_EQ(page->rows[0]->id(), 250) << "a missing value sorts last";
  q.desc = false;
  page = view.Table(q);
  EXPECT_EQ(page->rows[0]->id(), 250) << "also ascending";

  q = {};
  q.where = "accuracy>=0.5, macs<=1100";
  auto all = view.AllRows(q);
  ASSERT_TRUE(all.ok());
  for (const v1::Trial* t : *all) {
    EXPECT_GE(t->metrics().at("accuracy"), 0.5);
    EXPECT_LE(t->metrics().at("macs"), 1100);
  }
  EXPECT_GT(all->size(), 0u);
  EXPECT_LT(all->size(), 101u);
}

TEST(JobViewTest, BadQueriesNameTheirField) {
  JobView view(Job(), {Trial(0, 0.5, 10)});
  TableQuery q;
  q.sort = "nope";
  EXPECT_THAT(std::string(view.Table(q).status().message()), HasSubstr("sort: no column 'nope'"));
  q = {};
  q.where = "accuracy>>1";
  EXPECT_EQ(view.Table(q).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(view.Table(q).status().message()), HasSubstr("where:"));
  q = {};
  q.state = "happy";
  EXPECT_THAT(std::string(view.Table(q).status().message()), HasSubstr("state:"));
  EXPECT_THAT(std::string(view.ParetoSvg("accuracy", "speed").status().message()),
              HasSubstr("y: no metric 'speed'"));
}

TEST(JobViewTest, FilterByState) {
  JobView view(Job(), {Trial(0, 0.5, 10), Trial(1, 0.6, 10, v1::TRIAL_STOPPED),
                       Trial(2, NAN, 10, v1::TRIAL_FAILED)});
  TableQuery q;
  q.state = "stopped";
  auto page = view.Table(q);
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->matched, 1u);
  EXPECT_EQ(page->rows[0]->id(), 1);
}

TEST(JobViewTest, NonFiniteAndMissingMetricsAreLeftOutOfPlots) {
  JobView view(Job(), {Trial(0, 0.5, 10), Trial(1, INFINITY, 20), Trial(2, NAN, 30),
                       Trial(3, 0.7, 40), Trial(4, -INFINITY, 5, v1::TRIAL_FAILED)});
  auto svg = view.ParetoSvg("accuracy", "macs");
  ASSERT_TRUE(svg.ok()) << svg.status();
  EXPECT_THAT(*svg, Not(HasSubstr("nan")));
  EXPECT_THAT(*svg, Not(HasSubstr("inf\"")));
  EXPECT_THAT(view.BestSoFarSvg(), Not(HasSubstr("nan")));
  EXPECT_THAT(view.BestSoFarSvg(), HasSubstr("best-line"));
  TableQuery q;
  q.where = "accuracy>=0";
  auto all = view.AllRows(q);
  ASSERT_TRUE(all.ok());
  for (const v1::Trial* t : *all) EXPECT_TRUE(std::isfinite(t->metrics().at("accuracy")));
}

TEST(JobViewTest, FrontFollowsDirectionsAndConstraints) {
  v1::Job job = Job();
  JobView view(job, {Trial(0, 0.5, 10), Trial(1, 0.6, 20), Trial(2, 0.55, 30),
                     Trial(3, 0.9, 90, v1::TRIAL_STOPPED)});
  auto front = view.Front();
  ASSERT_EQ(front.size(), 2u);
  EXPECT_EQ(front[0]->id(), 1) << "best accuracy first; stopped trials are not on the front";
  EXPECT_EQ(front[1]->id(), 0);
  auto* c = job.mutable_spec()->add_constraints();
  c->set_metric("accuracy");
  c->set_lower(2);
  JobView infeasible(job, {Trial(0, 0.5, 10), Trial(1, 0.6, 20)});
  EXPECT_TRUE(infeasible.Front().empty());
  auto svg = infeasible.ParetoSvg("accuracy", "macs");
  ASSERT_TRUE(svg.ok());
  EXPECT_THAT(*svg, HasSubstr("class=\"candidate\""));
  EXPECT_THAT(*svg, Not(HasSubstr("class=\"front\"")));
}

TEST(JobViewTest, PlotsAreSampledAndSaySo) {
  std::vector<v1::Trial> trials;
  for (int i = 0; i < 5000; ++i) {
    v1::Trial t = Trial(i, std::fmod(i * 0.618, 1.0), 1000 + (i * 7919) % 5000);
    for (int e = 1; e <= 3; ++e) {
      auto* p = t.add_curve();
      p->set_epoch(e);
      p->set_value(0.1 * e);
    }
    trials.push_back(std::move(t));
  }
  PlotLimits limits;
  limits.scatter_points = 100;
  limits.progress_points = 50;
  limits.curves = 10;
  limits.choice_sample = 200;
  JobView view(Job(), trials, limits);
  auto svg = view.ParetoSvg("accuracy", "macs");
  ASSERT_TRUE(svg.ok());
  size_t circles = 0;
  for (size_t p = svg->find("<circle"); p != std::string::npos; p = svg->find("<circle", p + 1)) {
    ++circles;
  }
  EXPECT_LE(circles, 100 + view.Front().size());
  EXPECT_THAT(*svg, HasSubstr("100 of 4,9"));  // of the trials off the front
  EXPECT_THAT(view.BestSoFarSvg(), HasSubstr("of 5,000 trials shown"));
  EXPECT_THAT(view.CurvesSvg(), HasSubstr("of 5,000 curves shown"));
  EXPECT_THAT(view.ChoicesSvg(), HasSubstr("from 200 of 5,000 trials"));
  EXPECT_THAT(view.ChoicesSvg(), HasSubstr("stages.0.kernel"));
}

TEST(JobViewTest, AxisMetricsStartWithTheObjectives) {
  v1::Trial t = Trial(0, 0.5, 10);
  (*t.mutable_metrics())["params"] = 7;
  (*t.mutable_metrics())["latency_ms@edge"] = 1.5;
  JobView view(Job(1), {t});
  ASSERT_GE(view.axis_metrics().size(), 4u);
  EXPECT_EQ(view.axis_metrics()[0], "accuracy");
  EXPECT_EQ(view.axis_metrics()[1], "macs");
  EXPECT_EQ(view.axis_metrics()[2], "params");
  EXPECT_TRUE(view.Maximize("accuracy"));
  EXPECT_FALSE(view.Maximize("latency_ms@edge"));
}

TEST(JobViewTest, Thousands) {
  EXPECT_EQ(Thousands(0), "0");
  EXPECT_EQ(Thousands(999), "999");
  EXPECT_EQ(Thousands(1000), "1,000");
  EXPECT_EQ(Thousands(100000), "100,000");
  EXPECT_EQ(Thousands(-1234567), "-1,234,567");
}

TEST(ChartsTest, FlattenArchitectureSplitsNb201Cells) {
  v1::Architecture a;
  a.mutable_nb201()->set_cell("|nor_conv_3x3~0|+|skip_connect~0|avg_pool_3x3~1|");
  auto* lr = a.mutable_params()->add_values();  // hyperparameters have their own plots
  lr->set_name("lr");
  lr->set_number(0.01);
  auto flat = report::FlattenArchitecture(a);
  ASSERT_EQ(flat.size(), 3u);
  EXPECT_EQ(flat[0], std::make_pair(std::string("cell.edge0"), std::string("nor_conv_3x3")));
  EXPECT_EQ(flat[2], std::make_pair(std::string("cell.edge2"), std::string("avg_pool_3x3")));
}

}  // namespace
}  // namespace nasforge::ui
