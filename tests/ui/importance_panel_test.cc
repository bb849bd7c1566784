// The dashboard's importance panel (ui/job_view_importance.cc, report/importance_charts.cc):
// bars ranked by share, a value-vs-objective plot per hyperparameter (a log axis for a
// log-scaled one, columns for categories), sampling said in the caption, errors named, and the
// job page's section.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <string>
#include <vector>

#include "core/jobspec.h"
#include "core/parameters.h"
#include "core/search_space.h"
#include "ui/job_view.h"
#include "ui/pages.h"

namespace nasforge::ui {
namespace {

using ::testing::HasSubstr;

int Count(const std::string& s, const std::string& what) {
  int n = 0;
  for (size_t p = s.find(what); p != std::string::npos; p = s.find(what, p + 1)) ++n;
  return n;
}

// A job over a space of three parameters whose accuracy depends mostly on the learning rate.
struct Fixture {
  v1::Job job;
  std::vector<v1::Trial> trials;
  explicit Fixture(int n) {
    job.set_id("job-1");
    job.set_state(v1::JOB_SUCCEEDED);
    EXPECT_TRUE(YamlToMessage(R"(
name: hpo
parameters:
  - {name: lr, real: {low: 1e-4, high: 1, log: true}}
  - {name: opt, categorical: {values: [adam, sgd]}}
  - {name: units, integer: {low: 16, high: 64}}
)",
                              job.mutable_spec()->mutable_search_space())
                    .ok());
    auto* o = job.mutable_spec()->add_objectives();
    o->set_metric("accuracy");
    o->set_direction(v1::MAXIMIZE);
    const auto& space = job.spec().search_space();
    std::mt19937_64 rng(3);
    for (int i = 0; i < n; ++i) {
      v1::Trial t;
      t.set_id(i);
      t.set_state(v1::TRIAL_SUCCEEDED);
      *t.mutable_architecture() = DecodeArchitecture(space, SampleGenes(space, rng));
      const double lr = FindParam(t.architecture(), "lr")->number();
      const bool sgd = FindParam(t.architecture(), "opt")->text() == "sgd";
      (*t.mutable_metrics())["accuracy"] =
          0.9 - 0.1 * std::abs(std::log10(lr) + 2) - (sgd ? 0.05 : 0);
      trials.push_back(std::move(t));
    }
  }
};

TEST(ImportancePanelTest, BarsRankTheDecisionsAndEachParameterHasItsPlot) {
  Fixture f(200);
  JobView view(f.job, f.trials);
  const std::string bars = view.ImportanceSvg();
  EXPECT_THAT(bars, HasSubstr("class=\"importance-plot\""));
  EXPECT_EQ(Count(bars, "<g class=\"bar\""), 3);
  EXPECT_LT(bars.find("data-decision=\"params.lr\""), bars.find("data-decision=\"params.opt\""))
      << "the learning rate matters most";
  EXPECT_EQ(view.ValuePlots(),
            (std::vector<std::string>{"params.lr", "params.opt", "params.units"}));

  auto lr = view.ValueSvg("params.lr");
  ASSERT_TRUE(lr.ok()) << lr.status();
  EXPECT_THAT(*lr, HasSubstr("value-plot log-x"));
  EXPECT_THAT(*lr, HasSubstr("(log scale)"));
  EXPECT_THAT(*lr, HasSubstr(">0.001</text>")) << "ticks say the values, not their logs";
  EXPECT_EQ(Count(*lr, "class=\"point\""), 200);
  auto opt = view.ValueSvg("params.opt");
  ASSERT_TRUE(opt.ok());
  EXPECT_THAT(*opt, HasSubstr("class=\"category\""));
  EXPECT_THAT(*opt, HasSubstr(">adam</text>"));
  EXPECT_THAT(*opt, HasSubstr(">sgd</text>"));
  auto units = view.ValueSvg("params.units");
  ASSERT_TRUE(units.ok());
  EXPECT_THAT(*units, ::testing::Not(HasSubstr("log-x")));

  auto bad = view.ValueSvg("params.nope");
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(bad.status().message(), HasSubstr("decision: 'params.nope'"));

  const std::string html = JobPage(view, {}, {"bob", "read", true});
  EXPECT_THAT(html, HasSubstr("<section id=\"importance\""));
  EXPECT_EQ(Count(html, "class=\"plot value\""), 3);
  EXPECT_THAT(html, HasSubstr("data-decision=\"params.lr\""));
}

TEST(ImportancePanelTest, ManyTrialsAreSampledAndSaySo) {
  Fixture f(2000);
  PlotLimits limits;
  limits.value_points = 600;
  JobView view(f.job, f.trials, limits);
  auto lr = view.ValueSvg("params.lr");
  ASSERT_TRUE(lr.ok());
  EXPECT_EQ(Count(*lr, "class=\"point\""), 600);
  EXPECT_THAT(*lr, HasSubstr("600 of 2000 trials, evenly sampled"));
}

TEST(ImportancePanelTest, TooFewTrialsSaySo) {
  Fixture f(2);
  JobView view(f.job, f.trials);
  EXPECT_THAT(view.ImportanceSvg(), HasSubstr("importance-plot empty"));
  EXPECT_THAT(view.ImportanceSvg(), HasSubstr("at least 4 succeeded trials"));
  EXPECT_TRUE(view.ValuePlots().empty());
  EXPECT_FALSE(view.ValueSvg("params.lr").ok());
}

}  // namespace
}  // namespace nasforge::ui
