// Compressed variants in the JobManager (JobSpec.compression, controller/job_manager_variants.cc):
// made when a trial joins the front, leased only to workers that make their kind, not counted
// against max_trials, kept off the search's front, kept across a restart, and failed when no live
// worker can make them.
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "core/compression.h"
#include "core/cost.h"
#include "core/search_space.h"
#include "tests/controller/job_manager_fixture.h"

namespace nasforge {
namespace {

using ::testing::HasSubstr;

v1::JobSpec CompressingSpec(int max_trials) {
  v1::JobSpec s = TinySpec(max_trials, 2);
  s.mutable_compression()->add_recipes()->mutable_int8();
  return s;
}

class VariantsTest : public JobManagerTest {
 protected:
  std::string RegisterMaker(const std::string& id) {
    v1::RegisterWorkerRequest r;
    r.set_worker_id(id);
    r.mutable_hardware()->set_name("cpu-1t");
    r.add_compression("int8");
    return jm_->RegisterWorker(r).value().worker_id();
  }
  v1::Job Get(const std::string& id) { return jm_->GetJob(id, Principal::Local()).value(); }
  std::vector<v1::Trial> Trials(const std::string& job) {
    v1::ListCandidatesRequest r;
    r.set_job_id(job);
    auto all = jm_->ListCandidates(r, Principal::Local()).value();
    return {all.trials().begin(), all.trials().end()};
  }
};

TEST_F(VariantsTest, FrontMembersGetVariantsThatOnlyTheirMakersLease) {
  v1::Job job = Submit(CompressingSpec(2));
  const std::string plain = Register("plain"), maker = RegisterMaker("maker");
  v1::LeaseTrialResponse first = Lease(plain);
  ASSERT_TRUE(first.has_trial());
  EXPECT_FALSE(first.has_variant());
  ASSERT_TRUE(Report(plain, first, 0.8).ok());  // the first result is on the front
  EXPECT_EQ(Get(job.id()).counts().variants(), 1);

  // The plain worker gets the search's next candidate, never the variant.
  v1::LeaseTrialResponse second = Lease(plain);
  ASSERT_TRUE(second.has_trial());
  EXPECT_FALSE(second.has_variant());
  EXPECT_FALSE(Lease(plain).has_trial());  // max_trials reached; the variant is not its to make

  v1::LeaseTrialResponse v = Lease(maker);
  ASSERT_TRUE(v.has_trial());
  ASSERT_TRUE(v.has_variant());
  EXPECT_EQ(v.variant().of(), first.lease().trial_id());
  EXPECT_EQ(v.variant().recipe().name(), "int8");  // defaults filled in
  EXPECT_EQ(v.variant().recipe().int8().calibration_batches(), 8);
  EXPECT_EQ(v.variant().recipe().int8().tolerance(), 1.0);
  EXPECT_EQ(v.architecture().SerializeAsString(), first.architecture().SerializeAsString());
  EXPECT_EQ(jm_->VariantParent(v.lease(), maker).value(), first.lease().trial_id());
  EXPECT_EQ(jm_->VariantParent(second.lease(), plain).status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(jm_->VariantParent(v.lease(), plain).status().code(),
            absl::StatusCode::kFailedPrecondition);  // not its lease
  ASSERT_TRUE(Report(maker, v, 0.79).ok());
  ASSERT_TRUE(Report(plain, second, 0.1).ok());  // dominated or not: a variant only if on the front
  for (;;) {  // any further variant (the second trial on the front)
    v1::LeaseTrialResponse more = Lease(maker);
    if (!more.has_trial()) break;
    ASSERT_TRUE(more.has_variant());
    ASSERT_TRUE(Report(maker, more, 0.09).ok());
  }
  const v1::Job done = Get(job.id());
  EXPECT_EQ(done.state(), v1::JOB_SUCCEEDED);
  int variants = 0;
  std::set<int64_t> parents;
  for (const v1::Trial& t : Trials(job.id())) {
    if (!t.has_variant()) continue;
    ++variants;
    EXPECT_TRUE(parents.insert(t.variant().of()).second) << "one variant per parent and recipe";
    EXPECT_EQ(t.state(), v1::TRIAL_SUCCEEDED);
    EXPECT_EQ(t.metrics().at("macs"), Trials(job.id())[t.variant().of()].metrics().at("macs"));
  }
  EXPECT_EQ(done.counts().variants(), variants);
  EXPECT_EQ(done.counts().succeeded(), 2 + variants);
  EXPECT_EQ(done.best_objective(), 0.8);  // a variant's accuracy is not the search's best
  v1::QueryParetoRequest q;
  q.set_job_id(job.id());
  const v1::QueryParetoResponse front = jm_->QueryPareto(q, Principal::Local()).value();
  EXPECT_GT(front.trials_size(), 0);
  for (const v1::Trial& t : front.trials()) {
    EXPECT_FALSE(t.has_variant()) << "trial " << t.id() << " on the search's own front";
  }
  q.set_variants("only");
  const v1::QueryParetoResponse only = jm_->QueryPareto(q, Principal::Local()).value();
  EXPECT_GT(only.trials_size(), 0);
  for (const v1::Trial& t : only.trials()) EXPECT_TRUE(t.has_variant()) << "trial " << t.id();
  q.set_variants("include");
  const v1::QueryParetoResponse both = jm_->QueryPareto(q, Principal::Local()).value();
  EXPECT_EQ(both.considered(), 2 + variants);
  q.set_variants("all");
  auto bad = jm_->QueryPareto(q, Principal::Local());
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(bad.status().message()), HasSubstr("variants"));

  // Across a restart: the same trials, variants and counts.
  Open();
  EXPECT_EQ(Get(job.id()).counts().variants(), variants);
  int recovered = 0;
  for (const v1::Trial& t : Trials(job.id())) recovered += t.has_variant();
  EXPECT_EQ(recovered, variants);
}

TEST_F(VariantsTest, AVariantNoLiveWorkerMakesFailsAfterAWhileAndTheJobEnds) {
  v1::Job job = Submit(CompressingSpec(1));
  const std::string plain = Register("plain");
  v1::LeaseTrialResponse first = Lease(plain);
  ASSERT_TRUE(Report(plain, first, 0.8).ok());
  EXPECT_EQ(Get(job.id()).state(), v1::JOB_RUNNING);  // its variant is queued
  EXPECT_FALSE(Lease(plain).has_trial());
  jm_->ExpireLeases();
  clock_.Advance(absl::Seconds(59));
  EXPECT_FALSE(Lease(plain).has_trial());  // keeps itself live
  jm_->ExpireLeases();
  EXPECT_EQ(Get(job.id()).state(), v1::JOB_RUNNING);
  clock_.Advance(absl::Seconds(2));
  EXPECT_FALSE(Lease(plain).has_trial());
  jm_->ExpireLeases();
  const v1::Job done = Get(job.id());
  EXPECT_EQ(done.state(), v1::JOB_SUCCEEDED);
  const v1::Trial variant = Trials(job.id()).back();
  ASSERT_TRUE(variant.has_variant());
  EXPECT_EQ(variant.state(), v1::TRIAL_FAILED);
  EXPECT_THAT(variant.error(), HasSubstr("no live worker makes int8 variants"));
}

// With hardware targets, a search trial waits for its latency before training; a variant does not
// (its latency would be its own network's, not its parent's) and is leased at once. Importance
// reads the search's trials only.
TEST_F(VariantsTest, AVariantOfAJobWithHardwareTargetsIsLeasedAtOnce) {
  v1::JobSpec s = CompressingSpec(1);
  s.add_hardware_targets()->set_profile("cpu-1t");
  v1::Job job = Submit(s);
  RegisterAs("maker", "cpu-1t", 1, /*measures=*/true, {"int8"});
  v1::LeaseTrialResponse m = Lease("maker");  // the search trial's latency first
  ASSERT_TRUE(m.has_measure());
  const absl::Status measured = Measured("maker", m.measure(), 1.5);
  ASSERT_TRUE(measured.ok()) << measured;
  v1::LeaseTrialResponse first = Lease("maker");
  ASSERT_TRUE(first.has_trial());
  ASSERT_TRUE(Report("maker", first, 0.8).ok());
  v1::LeaseTrialResponse v = Lease("maker");
  ASSERT_TRUE(v.has_trial()) << "the variant waits for no measurement";
  EXPECT_TRUE(v.has_variant());
  ASSERT_TRUE(Report("maker", v, 0.79).ok());
  EXPECT_EQ(Get(job.id()).state(), v1::JOB_SUCCEEDED);
}

// A pruned variant is a network of its own: the parent's architecture at half the widths, its
// own counts, measured on the job's hardware targets like a candidate before it is leased.
TEST_F(VariantsTest, APrunedVariantIsANetworkOfItsOwnMeasuredLikeACandidate) {
  v1::JobSpec s = TinySpec(1, 2);
  s.mutable_budget()->set_epochs(6);
  s.mutable_compression()->add_recipes()->mutable_prune();
  s.add_hardware_targets()->set_profile("cpu-1t");
  v1::Job job = Submit(s);
  RegisterAs("maker", "cpu-1t", 1, /*measures=*/true, {"prune"});
  v1::LeaseTrialResponse m = Lease("maker");
  ASSERT_TRUE(m.has_measure());
  ASSERT_TRUE(Measured("maker", m.measure(), 2.0).ok());
  v1::LeaseTrialResponse first = Lease("maker");
  ASSERT_TRUE(first.has_trial());
  ASSERT_TRUE(Report("maker", first, 0.8).ok());

  const v1::Trial parent = Trials(job.id())[first.lease().trial_id()];
  const v1::Trial queued = Trials(job.id()).back();
  ASSERT_TRUE(queued.has_variant());
  const v1::Architecture pruned = PrunedArchitecture(parent.architecture(), 0.5).value();
  EXPECT_EQ(queued.architecture().SerializeAsString(), pruned.SerializeAsString());
  EXPECT_EQ(queued.arch_hash(), ArchHash(pruned));
  EXPECT_EQ(queued.variant().of_architecture().SerializeAsString(),
            parent.architecture().SerializeAsString());
  EXPECT_EQ(queued.variant().recipe().prune().ratio(), 0.5);  // defaults filled in
  EXPECT_EQ(queued.variant().recipe().prune().epochs(), 2);   // a third of 6
  EXPECT_EQ(queued.metrics().at("macs"), static_cast<double>(ComputeCost(pruned).macs));
  EXPECT_LT(queued.metrics().at("macs"), parent.metrics().at("macs"));

  v1::LeaseTrialResponse vm = Lease("maker");  // the pruned network's own latency first
  ASSERT_TRUE(vm.has_measure()) << "a pruned variant is measured before it is made";
  EXPECT_EQ(vm.measure().architecture().SerializeAsString(), pruned.SerializeAsString());
  ASSERT_TRUE(Measured("maker", vm.measure(), 1.0).ok());
  v1::LeaseTrialResponse v = Lease("maker");
  ASSERT_TRUE(v.has_trial());
  ASSERT_TRUE(v.has_variant());
  EXPECT_EQ(v.architecture().SerializeAsString(), pruned.SerializeAsString());
  EXPECT_EQ(v.variant().of_architecture().SerializeAsString(),
            parent.architecture().SerializeAsString());
  ASSERT_TRUE(Report("maker", v, 0.78).ok());
  EXPECT_EQ(Get(job.id()).state(), v1::JOB_SUCCEEDED);
  const v1::Trial made = Trials(job.id()).back();
  EXPECT_EQ(made.metrics().at("latency_ms@cpu-1t"), 1.0);
  EXPECT_EQ(parent.metrics().at("latency_ms@cpu-1t"), 2.0);
}

// Where rounding half the widths would make two different widths equal (a residual that the
// parent does not have), the variant is not made, and says why.
TEST_F(VariantsTest, APruneThatWouldChangeTheLayersFailsWithTheReason) {
  v1::JobSpec s = TinySpec(1, 2);
  auto* m = s.mutable_search_space()->mutable_mbconv();
  m->clear_stem_channels();
  m->add_stem_channels(15);
  m->mutable_stages(0)->set_stride(1);  // 15 -> 16 channels at stride 1: no residual; 8 -> 8: one
  s.mutable_compression()->add_recipes()->mutable_prune();
  v1::Job job = Submit(s);
  const std::string w = Register("plain");
  v1::LeaseTrialResponse first = Lease(w);
  ASSERT_TRUE(first.has_trial());
  ASSERT_TRUE(Report(w, first, 0.8).ok());
  const v1::Trial variant = Trials(job.id()).back();
  ASSERT_TRUE(variant.has_variant());
  EXPECT_EQ(variant.state(), v1::TRIAL_FAILED);
  EXPECT_THAT(variant.error(), HasSubstr("choose another ratio"));
  EXPECT_EQ(Get(job.id()).state(), v1::JOB_SUCCEEDED);
}

// A distilled variant learns from the job's most accurate search trial when it is made; its
// student is the member's own architecture, or the member pruned by the recipe it names. The
// teacher's weights are fetched through the variant's lease like the parent's.
TEST_F(VariantsTest, ADistilledVariantNamesItsTeacherAndItsStudent) {
  v1::JobSpec s = TinySpec(2, 1);
  s.mutable_budget()->set_epochs(4);
  auto* prune = s.mutable_compression()->add_recipes();
  prune->set_name("half");
  prune->mutable_prune();
  s.mutable_compression()->add_recipes()->mutable_distill();  // teacher "best", own architecture
  auto* small = s.mutable_compression()->add_recipes();
  small->set_name("distill-half");
  small->mutable_distill()->set_student("half");
  v1::Job job = Submit(s);
  v1::RegisterWorkerRequest r;
  r.set_worker_id("maker");
  r.mutable_hardware()->set_name("cpu-1t");
  for (const char* k : {"int8", "prune", "distill"}) r.add_compression(k);
  ASSERT_TRUE(jm_->RegisterWorker(r).ok());
  v1::LeaseTrialResponse first = Lease("maker");
  ASSERT_TRUE(first.has_trial());
  ASSERT_TRUE(Report("maker", first, 0.8).ok());
  const v1::Trial parent = Trials(job.id())[first.lease().trial_id()];
  std::map<std::string, v1::Trial> made;
  for (const v1::Trial& t : Trials(job.id())) {
    if (t.has_variant()) made[t.variant().recipe().name()] = t;
  }
  ASSERT_EQ(made.size(), 3u);
  const v1::Trial& own = made.at("distill");
  EXPECT_EQ(own.variant().teacher(), parent.id());  // the only, so the most accurate, trial
  EXPECT_EQ(own.variant().teacher_architecture().SerializeAsString(),
            parent.architecture().SerializeAsString());
  EXPECT_EQ(own.architecture().SerializeAsString(), parent.architecture().SerializeAsString());
  EXPECT_EQ(own.variant().recipe().distill().alpha(), 0.5);  // defaults filled in
  EXPECT_EQ(own.variant().recipe().distill().temperature(), 4);
  EXPECT_EQ(own.variant().recipe().distill().epochs(), 4);
  EXPECT_EQ(own.variant().recipe().distill().teacher(), "best");
  const v1::Trial& pruned = made.at("distill-half");
  EXPECT_EQ(pruned.architecture().SerializeAsString(),
            PrunedArchitecture(parent.architecture(), 0.5)->SerializeAsString());
  EXPECT_EQ(pruned.variant().of_architecture().SerializeAsString(),
            parent.architecture().SerializeAsString());
  EXPECT_EQ(pruned.metrics().at("macs"), made.at("half").metrics().at("macs"));

  // Leases: the teacher's id for a distilled variant's lease; refused for the others.
  for (;;) {
    v1::LeaseTrialResponse v = Lease("maker");
    if (!v.has_trial()) break;
    if (!v.has_variant()) {
      ASSERT_TRUE(Report("maker", v, 0.5).ok());  // the second search trial
      continue;
    }
    auto teacher = jm_->VariantParent(v.lease(), "maker", /*teacher=*/true);
    if (v.variant().recipe().has_distill()) {
      EXPECT_EQ(teacher.value(), v.variant().teacher());
    } else {
      EXPECT_EQ(teacher.status().code(), absl::StatusCode::kFailedPrecondition);
    }
    ASSERT_TRUE(Report("maker", v, 0.7).ok());
  }
  EXPECT_EQ(Get(job.id()).state(), v1::JOB_SUCCEEDED);
}

// A named teacher that has not succeeded: the variant is not made, and says why.
TEST_F(VariantsTest, ANamedTeacherThatIsNoSucceededTrialFailsTheVariant) {
  v1::JobSpec s = TinySpec(1, 1);
  s.mutable_compression()->add_recipes()->mutable_distill()->set_teacher("5");
  v1::Job job = Submit(s);
  const std::string w = Register("plain");
  v1::LeaseTrialResponse first = Lease(w);
  ASSERT_TRUE(Report(w, first, 0.8).ok());
  const v1::Trial variant = Trials(job.id()).back();
  ASSERT_TRUE(variant.has_variant());
  EXPECT_EQ(variant.state(), v1::TRIAL_FAILED);
  EXPECT_THAT(variant.error(), HasSubstr("teacher trial 5 is not a succeeded search trial"));
}

// `nasforge compress JOB TRIAL`: variants of a named trial of an ended job; the job runs again
// until they are made, and ends again. Each recipe once per trial; errors name the field.
TEST_F(VariantsTest, CompressTrialMakesVariantsOfANamedTrialOfAnEndedJob) {
  v1::Job job = Submit(TinySpec(1, 1));  // no compression recipes of its own
  const std::string maker = RegisterMaker("maker");
  v1::LeaseTrialResponse first = Lease(maker);
  ASSERT_TRUE(Report(maker, first, 0.8).ok());
  ASSERT_EQ(Get(job.id()).state(), v1::JOB_SUCCEEDED);

  v1::CompressTrialRequest req;
  req.set_job_id(job.id());
  req.set_trial_id(first.lease().trial_id());
  auto none = jm_->CompressTrial(req);
  EXPECT_EQ(none.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(none.status().message()), HasSubstr("recipes"));
  req.add_recipes()->mutable_prune()->set_ratio(2);
  auto bad = jm_->CompressTrial(req);
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(bad.status().message()), HasSubstr("recipes[0].prune.ratio"));
  EXPECT_EQ(Get(job.id()).state(), v1::JOB_SUCCEEDED) << "refused: nothing applied";
  req.clear_recipes();
  req.add_recipes()->mutable_int8();
  req.set_trial_id(7);
  EXPECT_EQ(jm_->CompressTrial(req).status().code(), absl::StatusCode::kNotFound);
  req.set_trial_id(first.lease().trial_id());

  auto made = jm_->CompressTrial(req);
  ASSERT_TRUE(made.ok()) << made.status();
  ASSERT_EQ(made->variants_size(), 1);
  EXPECT_EQ(made->variants(0).variant().of(), first.lease().trial_id());
  EXPECT_EQ(made->variants(0).variant().recipe().int8().calibration_batches(), 8);  // defaults
  EXPECT_EQ(made->variants(0).state(), v1::TRIAL_QUEUED);
  EXPECT_EQ(Get(job.id()).state(), v1::JOB_RUNNING) << "runs again until its variants are made";
  auto again = jm_->CompressTrial(req);
  EXPECT_EQ(again.status().code(), absl::StatusCode::kAlreadyExists);
  v1::CompressTrialRequest of_variant = req;
  of_variant.set_trial_id(made->variants(0).id());
  EXPECT_EQ(jm_->CompressTrial(of_variant).status().code(), absl::StatusCode::kFailedPrecondition);

  Open();  // durable: the variant and the job's state survive a restart
  RegisterMaker("maker");
  EXPECT_EQ(Get(job.id()).state(), v1::JOB_RUNNING);
  v1::LeaseTrialResponse v = Lease("maker");
  ASSERT_TRUE(v.has_variant());
  EXPECT_EQ(v.lease().trial_id(), made->variants(0).id());
  ASSERT_TRUE(Report("maker", v, 0.79).ok());
  const v1::Job done = Get(job.id());
  EXPECT_EQ(done.state(), v1::JOB_SUCCEEDED);
  EXPECT_EQ(done.counts().variants(), 1);
  EXPECT_EQ(done.best_objective(), 0.8);
}

TEST_F(VariantsTest, RecipesAreValidatedByField) {
  v1::JobSpec s = CompressingSpec(2);
  s.mutable_compression()->add_recipes()->mutable_int8()->set_calibration_batches(300);
  v1::SubmitJobRequest r;
  *r.mutable_spec() = s;
  auto refused = jm_->SubmitJob(r);
  ASSERT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument);
  // The second recipe's default name repeats the first's.
  EXPECT_THAT(std::string(refused.status().message()), HasSubstr("compression.recipes[1].name"));
  s.mutable_compression()->mutable_recipes(1)->set_name("int8-small");
  *r.mutable_spec() = s;
  refused = jm_->SubmitJob(r);
  EXPECT_THAT(std::string(refused.status().message()),
              HasSubstr("compression.recipes[1].int8.calibration_batches"));
  s = CompressingSpec(2);
  s.mutable_compression()->add_recipes()->mutable_prune()->set_ratio(0.99);
  *r.mutable_spec() = s;
  refused = jm_->SubmitJob(r);
  EXPECT_THAT(std::string(refused.status().message()),
              HasSubstr("compression.recipes[1].prune.ratio"));
  for (const auto& [field, bad] :
       std::vector<std::pair<std::string, std::string>>{{"alpha", "{alpha: 1.5}"},
                                                        {"temperature", "{temperature: 50}"},
                                                        {"teacher", "{teacher: champion}"},
                                                        {"student", "{student: int8}"}}) {
    s = CompressingSpec(2);
    auto* d = s.mutable_compression()->add_recipes()->mutable_distill();
    if (field == "alpha") d->set_alpha(1.5);
    if (field == "temperature") d->set_temperature(50);
    if (field == "teacher") d->set_teacher("champion");
    if (field == "student") d->set_student("int8");  // a recipe, but not a prune one
    *r.mutable_spec() = s;
    refused = jm_->SubmitJob(r);
    EXPECT_THAT(std::string(refused.status().message()),
                HasSubstr("compression.recipes[1].distill." + field))
        << bad;
  }
  s = CompressingSpec(2);
  s.mutable_training()->set_dataset("tabular");
  *r.mutable_spec() = s;
  refused = jm_->SubmitJob(r);
  EXPECT_THAT(std::string(refused.status().message()), HasSubstr("keeps no trained weights"));
}

}  // namespace
}  // namespace nasforge
