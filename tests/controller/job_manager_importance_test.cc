// JobManager::GetImportance: the metric's shares over the job's succeeded trials, the metric
// and direction chosen, points on request, and refusals named (unknown metric, too few trials,
// another owner's job).
#include <string>

#include "tests/controller/job_manager_fixture.h"

namespace nasforge {
namespace {

using ::testing::HasSubstr;

class ImportanceTest : public JobManagerTest {};

TEST_F(ImportanceTest, SharesOfTheSucceededTrialsPointsOnRequestRefusalsNamed) {
  v1::JobSpec spec = TinySpec(8, 1);
  auto* acc = spec.add_objectives();
  acc->set_metric("accuracy");
  acc->set_direction(v1::MAXIMIZE);
  const v1::Job job = Submit(spec);
  const std::string w = Register("w");
  v1::GetImportanceRequest req;
  req.set_job_id(job.id());
  EXPECT_EQ(jm_->GetImportance(req).status().code(), absl::StatusCode::kFailedPrecondition);
  // Accuracy set by the stage's kernel alone (5 is better), a little by the stem.
  for (int i = 0; i < 8; ++i) {
    v1::LeaseTrialResponse l = Lease(w);
    ASSERT_TRUE(l.has_trial());
    const auto& a = l.architecture().mbconv();
    const double v = 0.5 + 0.3 * (a.stages(0).kernel() == 5) + 0.01 * (a.stem_channels() == 16);
    ASSERT_TRUE(Report(w, l, v).ok());
  }
  auto r = jm_->GetImportance(req);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->metric(), "accuracy");
  EXPECT_TRUE(r->maximize());
  EXPECT_EQ(r->trials(), 8);
  ASSERT_GE(r->decisions_size(), 2);
  EXPECT_EQ(r->decisions(0).decision(), "stages[0].kernel");
  EXPECT_EQ(r->decisions(0).best(), "5");
  EXPECT_GT(r->decisions(0).importance(), 0.9);
  double sum = 0;
  for (const auto& d : r->decisions()) sum += d.importance();
  EXPECT_NEAR(sum, 1.0, 1e-9);
  EXPECT_EQ(r->points_size(), 0);
  req.set_include_points(true);
  r = jm_->GetImportance(req);
  ASSERT_TRUE(r.ok());
  int kernel_points = 0;
  for (const auto& p : r->points()) kernel_points += p.decision() == "stages[0].kernel";
  EXPECT_EQ(kernel_points, 8);

  // A metric no objective names: smaller is better unless it is an accuracy.
  req.set_metric("macs");
  r = jm_->GetImportance(req);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_FALSE(r->maximize());
  req.set_metric("");
  req.set_epoch(-1);
  EXPECT_THAT(jm_->GetImportance(req).status().message(), HasSubstr("epoch: must be >= 0"));
  req.set_epoch(99);
  EXPECT_THAT(jm_->GetImportance(req).status().message(), HasSubstr("epoch: 99 is beyond"));
  req.set_epoch(0);
  req.set_metric("no_such_metric");
  EXPECT_THAT(jm_->GetImportance(req).status().message(), HasSubstr("metric: unknown metric"));
  req.set_metric("");
  req.set_job_id("job-nope");
  EXPECT_EQ(jm_->GetImportance(req).status().code(), absl::StatusCode::kNotFound);
  req.set_job_id(job.id());
  const Principal eve{"eve", Role::kRead};
  EXPECT_FALSE(jm_->GetImportance(req, eve).ok()) << "another owner's job is not eve's to read";
}

}  // namespace
}  // namespace nasforge
