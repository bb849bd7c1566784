// The scrape-time gauges: JobManager::MetricsSnapshot (per running job: trials by state, best
// objectives, front size, hypervolume up to the documented reference; workers by profile and
// state) and their rendering as Prometheus families.
#include "controller/job_metrics.h"

#include <prometheus/text_serializer.h>

#include <cstdlib>

#include "core/pareto.h"
#include "tests/controller/job_manager_fixture.h"
#include "tests/test_util.h"

namespace nasforge {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

const JobMetricsSnapshot::Job* FindJob(const JobMetricsSnapshot& s, const std::string& id) {
  for (const auto& j : s.jobs) {
    if (j.id == id) return &j;
  }
  return nullptr;
}
// A pointer into a temporary snapshot would dangle: keep the snapshot in a variable.
const JobMetricsSnapshot::Job* FindJob(JobMetricsSnapshot&&, const std::string&) = delete;

TEST_F(JobManagerTest, MetricsSnapshotFollowsARunningJob) {
  v1::Job job = Submit(TinySpec(4, /*parallel=*/4));  // objectives: accuracy max, macs min
  std::string w = Register("w1");
  std::vector<v1::LeaseTrialResponse> leases;
  for (int i = 0; i < 4; ++i) leases.push_back(Lease(w));
  {
    JobMetricsSnapshot s = jm_->MetricsSnapshot();
    const auto* j = FindJob(s, job.id());
    ASSERT_NE(j, nullptr);
    EXPECT_EQ(j->trials[v1::TRIAL_RUNNING], 4);
    EXPECT_EQ(j->budget_trials, 4);
    EXPECT_EQ(j->front_size, 0);
    EXPECT_FALSE(j->hypervolume.has_value());
    EXPECT_TRUE(j->best.empty());
    EXPECT_EQ((s.workers[{"cpu-1t", "busy"}]), 1);
  }
  const double acc[] = {0.5, 0.7, 0.6};
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(Report(w, leases[i], acc[i]).ok());

  JobMetricsSnapshot s = jm_->MetricsSnapshot();
  const auto* j = FindJob(s, job.id());
  ASSERT_NE(j, nullptr);
  EXPECT_EQ(j->trials[v1::TRIAL_SUCCEEDED], 3);
  EXPECT_EQ(j->trials[v1::TRIAL_RUNNING], 1);
  // Expected from the trials themselves: the front, the best values and the hypervolume with
  // the default references (0 for accuracy; 2x the first finished trial's macs).
  std::vector<std::pair<double, double>> points;
  double best_macs = 1e300;
  for (int i = 0; i < 3; ++i) {
    v1::Trial t = jm_->GetCandidate(job.id(), leases[i].lease().trial_id()).value();
    points.emplace_back(-t.metrics().at("accuracy"), t.metrics().at("macs"));
    best_macs = std::min(best_macs, t.metrics().at("macs"));
  }
  std::vector<std::vector<double>> pts;
  for (auto [a, m] : points) pts.push_back({a, m});
  EXPECT_EQ(j->front_size, static_cast<int64_t>(NonDominated(pts).size()));
  ASSERT_EQ(j->best.size(), 2u);
  EXPECT_EQ(j->best[0].first, "accuracy");
  EXPECT_DOUBLE_EQ(j->best[0].second, 0.7);
  EXPECT_EQ(j->best[1].first, "macs");
  EXPECT_DOUBLE_EQ(j->best[1].second, best_macs);
  const double ref_macs = points[0].second + std::max(std::abs(points[0].second), 1.0);
  ASSERT_TRUE(j->hypervolume.has_value());
  EXPECT_DOUBLE_EQ(*j->hypervolume, Hypervolume2D(points, {0, ref_macs}));
  EXPECT_GT(*j->hypervolume, 0);
  EXPECT_EQ(j->last_progress_unix_seconds, absl::ToDoubleSeconds(clock_.Now() - absl::UnixEpoch()));

  // The same after a restart (recovery rebuilds the front and the reference).
  Open();
  JobMetricsSnapshot again = jm_->MetricsSnapshot();
  const auto* j2 = FindJob(again, job.id());
  ASSERT_NE(j2, nullptr);
  EXPECT_EQ(j2->front_size, j->front_size);
  EXPECT_DOUBLE_EQ(*j2->hypervolume, *j->hypervolume);

  // A finished job has no series any more.
  ASSERT_TRUE(Report(w, leases[3], 0.1).ok());
  ASSERT_EQ(jm_->GetJob(job.id())->state(), v1::JOB_SUCCEEDED);
  const JobMetricsSnapshot done = jm_->MetricsSnapshot();
  EXPECT_EQ(FindJob(done, job.id()), nullptr);
}

TEST_F(JobManagerTest, HypervolumeUsesTheObjectivesReference) {
  v1::JobSpec spec = TinySpec(2, 2);
  auto* a = spec.add_objectives();
  a->set_metric("accuracy");
  a->set_direction(v1::MAXIMIZE);
  a->set_reference(0.25);
  auto* m = spec.add_objectives();
  m->set_metric("macs");
  m->set_direction(v1::MINIMIZE);
  m->set_reference(1e9);
  v1::Job job = Submit(spec);
  std::string w = Register("w");
  auto l = Lease(w);
  ASSERT_TRUE(Report(w, l, 0.75).ok());
  v1::Trial t = jm_->GetCandidate(job.id(), l.lease().trial_id()).value();
  const JobMetricsSnapshot s = jm_->MetricsSnapshot();  // FindJob points into it
  const auto* j = FindJob(s, job.id());
  ASSERT_NE(j, nullptr);
  ASSERT_TRUE(j->hypervolume.has_value());
  EXPECT_DOUBLE_EQ(*j->hypervolume, (0.75 - 0.25) * (1e9 - t.metrics().at("macs")));
}

TEST_F(JobManagerTest, WorkersAreCountedByProfileAndState) {
  Submit(TinySpec(4, 4));
  std::string busy = Register("busy");
  Register("idle");
  ASSERT_TRUE(Lease(busy).has_trial());
  JobMetricsSnapshot s = jm_->MetricsSnapshot();
  EXPECT_EQ((s.workers[{"cpu-1t", "busy"}]), 1);
  EXPECT_EQ((s.workers[{"cpu-1t", "idle"}]), 1);
  // Silent past the live cutoff: lost; silent for over an hour: no longer counted.
  clock_.Advance(absl::Minutes(2));
  s = jm_->MetricsSnapshot();
  EXPECT_EQ((s.workers[{"cpu-1t", "lost"}]), 2);
  clock_.Advance(absl::Hours(1));
  EXPECT_TRUE(jm_->MetricsSnapshot().workers.empty());
  // Profiles are capped: a fleet (or a hostile worker) naming 40 profiles makes 32 + "other".
  for (int i = 0; i < 40; ++i) {
    v1::RegisterWorkerRequest r;
    r.set_worker_id(absl::StrCat("p", i));
    r.mutable_hardware()->set_name(absl::StrCat("profile-", 100 + i));
    ASSERT_TRUE(jm_->RegisterWorker(r).ok());
  }
  s = jm_->MetricsSnapshot();
  std::set<std::string> profiles;
  int64_t total = 0;
  for (const auto& [key, n] : s.workers) {
    profiles.insert(key.first);
    total += n;
  }
  EXPECT_EQ(profiles.size(), kMaxProfiles + 1);
  EXPECT_TRUE(profiles.count("other"));
  EXPECT_EQ(total, 40);
}

TEST(JobMetricsTest, RendersFamiliesWithBoundedLabels) {
  JobMetricsSnapshot s;
  JobMetricsSnapshot::Job j;
  j.id = "job-1";
  j.trials[v1::TRIAL_SUCCEEDED] = 7;
  j.budget_trials = 10;
  j.best = {{"accuracy", 0.9}};
  j.front_size = 3;
  j.hypervolume = 1.5;
  j.last_progress_unix_seconds = 1700000000;
  s.jobs.push_back(j);
  s.workers[{"cpu-1t", "idle"}] = 2;
  std::string text = prometheus::TextSerializer().Serialize(ToMetricFamilies(s));
  EXPECT_THAT(text,
              HasSubstr("nasforge_controller_job_trials{job_id=\"job-1\",state=\"succeeded\"} 7"));
  EXPECT_THAT(text,
              HasSubstr("nasforge_controller_job_best{job_id=\"job-1\",metric=\"accuracy\"} 0.9"));
  EXPECT_THAT(text, HasSubstr("nasforge_controller_job_front_size{job_id=\"job-1\"} 3"));
  EXPECT_THAT(text, HasSubstr("nasforge_controller_job_hypervolume{job_id=\"job-1\"} 1.5"));
  EXPECT_THAT(text, HasSubstr("nasforge_controller_job_budget_trials{job_id=\"job-1\"} 10"));
  EXPECT_THAT(text, HasSubstr("nasforge_controller_workers{profile=\"cpu-1t\",state=\"idle\"} 2"));
  j.hypervolume.reset();
  s.jobs = {j};
  EXPECT_THAT(prometheus::TextSerializer().Serialize(ToMetricFamilies(s)),
              Not(HasSubstr("nasforge_controller_job_hypervolume{")));
}

}  // namespace
}  // namespace nasforge
