// Warm start (JobSpec.warm_start): a job that starts from earlier jobs' trials. With the same
// recipe the results are reused (trials of the new job, not counted against its budget); with
// another recipe they are prior observations only; either way an architecture a source trained
// is never trained again, also after a restart. Sources are checked, and cannot be deleted while
// a job that starts from them runs.
#include <cstdint>
#include <string>

#include "tests/controller/job_manager_fixture.h"
#include "tests/test_util.h"

namespace nasforge {
namespace {

using ::testing::HasSubstr;

class WarmStartTest : public JobManagerTest {
 protected:
  // Trains `n` trials of `job` (accuracy 0.5 + trial id / 100); returns their hashes.
  std::set<std::string> Train(const std::string& w, int n) {
    std::set<std::string> hashes;
    for (int i = 0; i < n; ++i) {
      auto l = Lease(w);
      EXPECT_TRUE(l.has_trial()) << i;
      if (!l.has_trial()) break;
      hashes.insert(l.arch_hash());
      EXPECT_TRUE(Report(w, l, 0.5 + l.lease().trial_id() / 100.0).ok());
    }
    return hashes;
  }
  v1::Job Source(int n) {
    v1::Job a = Submit(TinySpec(n));
    w_ = Register("w");
    source_hashes_ = Train(w_, n);
    EXPECT_EQ(jm_->GetJob(a.id())->state(), v1::JOB_SUCCEEDED);
    return a;
  }
  std::string w_;
  std::set<std::string> source_hashes_;
};

TEST_F(WarmStartTest, TheSameRecipeReusesResults) {
  v1::Job a = Source(5);
  v1::JobSpec spec = TinySpec(3);
  spec.mutable_search_space()->set_name("renamed");  // the same choices: the same space
  spec.mutable_warm_start()->add_jobs(a.id());
  v1::Job b = Submit(spec);
  ASSERT_EQ(b.spec().warm_start().sources_size(), 1);
  EXPECT_TRUE(b.spec().warm_start().sources(0).same_recipe());
  EXPECT_EQ(b.spec().warm_start().sources(0).up_to_finish_seq(), 5u);
  EXPECT_EQ(b.counts().warm_started(), 5);
  EXPECT_EQ(b.counts().succeeded(), 5);
  for (int i = 0; i < 5; ++i) {
    v1::Trial t = jm_->GetCandidate(b.id(), i).value();
    EXPECT_EQ(t.warm_start_from(), absl::StrCat(a.id(), "/", i));
    EXPECT_DOUBLE_EQ(t.metrics().at("accuracy"), 0.5 + i / 100.0);
  }
  EXPECT_DOUBLE_EQ(b.best_objective(), 0.54);
  // Its own budget of 3 trains exactly the 3 architectures the source did not.
  std::set<std::string> own = Train(w_, 3);
  for (const auto& h : own) EXPECT_FALSE(source_hashes_.count(h)) << "retrained " << h;
  EXPECT_FALSE(Lease(w_).has_trial());
  v1::Job done = jm_->GetJob(b.id()).value();
  EXPECT_EQ(done.state(), v1::JOB_SUCCEEDED);
  EXPECT_EQ(done.counts().succeeded(), 8);
  v1::QueryParetoRequest q;
  q.set_job_id(b.id());
  auto front = jm_->QueryPareto(q).value();
  ASSERT_GT(front.trials_size(), 0);
  EXPECT_EQ(front.trials(0).id(), 7) << "the best is its own last trial (0.57)";
  Open();  // durable: the reused trials are the job's own rows
  v1::Job again = jm_->GetJob(b.id()).value();
  EXPECT_EQ(again.counts().warm_started(), 5);
  EXPECT_EQ(again.counts().succeeded(), 8);
  EXPECT_EQ(jm_->GetCandidate(b.id(), 2)->warm_start_from(), absl::StrCat(a.id(), "/2"));
}

TEST_F(WarmStartTest, AnotherRecipeGivesPriorsOnlyAlsoAfterARestart) {
  v1::Job a = Source(5);
  v1::JobSpec spec = TinySpec(2, /*parallel=*/1);
  spec.mutable_budget()->set_epochs(7);  // another recipe: nothing reused
  spec.mutable_warm_start()->add_jobs(a.id());
  v1::Job b = Submit(spec);
  EXPECT_FALSE(b.spec().warm_start().sources(0).same_recipe());
  EXPECT_EQ(b.counts().warm_started(), 0);
  EXPECT_FALSE(jm_->GetCandidate(b.id(), 0).ok()) << "no trial copied";
  std::set<std::string> first = Train(w_, 1);
  Open();  // the priors are told again from the source after a restart
  w_ = Register("w");
  std::set<std::string> second = Train(w_, 1);
  for (const auto& h : first) EXPECT_FALSE(source_hashes_.count(h));
  for (const auto& h : second) EXPECT_FALSE(source_hashes_.count(h)) << "after the restart";
  ASSERT_EQ(jm_->GetJob(b.id())->state(), v1::JOB_SUCCEEDED);
  // 5 + 2 of 8 architectures are known: one more trial, then the space is exhausted.
  v1::ExtendJobRequest x;
  x.set_job_id(b.id());
  x.set_add_trials(3);
  ASSERT_TRUE(jm_->ExtendJob(x).ok());
  std::set<std::string> third = Train(w_, 1);
  for (const auto& h : third) EXPECT_FALSE(source_hashes_.count(h));
  EXPECT_FALSE(Lease(w_).has_trial());
  v1::Job done = jm_->GetJob(b.id()).value();
  EXPECT_EQ(done.counts().succeeded(), 3);
  EXPECT_THAT(done.error(), HasSubstr("search space exhausted"));
}

TEST_F(WarmStartTest, SourcesAreCheckedAndKeptWhileUsed) {
  v1::Job a = Source(2);
  auto submit = [&](const v1::JobSpec& s, const Principal& who) {
    v1::SubmitJobRequest r;
    *r.mutable_spec() = s;
    return jm_->SubmitJob(r, who);
  };
  v1::JobSpec spec = TinySpec(2);
  spec.mutable_warm_start()->add_jobs("job-nope");
  auto missing = submit(spec, Principal::Local());
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(missing.status().message()), HasSubstr("warm_start.jobs[0]:"));

  spec.mutable_warm_start()->set_jobs(0, a.id());
  auto others = submit(spec, Principal{"bob", Role::kSubmit});
  EXPECT_EQ(others.status().code(), absl::StatusCode::kPermissionDenied) << others.status();

  v1::JobSpec wider = spec;
  wider.mutable_search_space()->mutable_mbconv()->mutable_stages(0)->add_kernel(7);
  auto space = submit(wider, Principal::Local());
  EXPECT_EQ(space.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(space.status().message()), HasSubstr("another space"));

  v1::JobSpec twice = spec;
  twice.mutable_warm_start()->add_jobs(a.id());
  EXPECT_THAT(std::string(submit(twice, Principal::Local()).status().message()),
              HasSubstr("warm_start.jobs[1]: named twice"));

  // Through the request's own list (the CLI's --warm-start) as well.
  v1::SubmitJobRequest r;
  *r.mutable_spec() = TinySpec(4);
  r.add_warm_start_jobs(a.id());
  auto b = jm_->SubmitJob(r);
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(b->counts().warm_started(), 2);
  auto del = jm_->DeleteJob(a.id());
  EXPECT_EQ(del.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(del.status().message()), HasSubstr(b->id()));
  ASSERT_TRUE(jm_->CancelJob(b->id()).ok());
  EXPECT_TRUE(jm_->DeleteJob(a.id()).ok()) << "once the job that used it has ended";
  Open();  // recovery without the source: the job is still there, its reused trials too
  EXPECT_EQ(jm_->GetJob(b->id())->counts().warm_started(), 2);
}

// A strategy that records what it is told (and proposes in gene order): the new job's strategy
// hears the source's trials, in the source's finish order, before anything else, and hears them
// again the same way after a restart.
std::vector<std::pair<std::string, double>>& Told() {
  static auto* told = new std::vector<std::pair<std::string, double>>();
  return *told;
}

TEST_F(WarmStartTest, TheStrategyIsToldTheSourcesTrialsFirst) {
  class Recording final : public Strategy {
   public:
    explicit Recording(v1::SearchSpace s) : space_(std::move(s)) {}
    Proposal Ask(const Admissible& admissible, int) override {
      const auto d = SpaceDecisions(space_);
      while (next_ < SpaceSize(space_)) {
        Genes g(d.size());
        uint64_t i = next_++;
        for (size_t k = 0; k < d.size(); ++k, i /= d[k - 1].choices) g[k] = i % d[k].choices;
        v1::Architecture a = DecodeArchitecture(space_, g);
        if (admissible(a)) return {Proposal::Kind::kCandidate, a, ""};
      }
      return {Proposal::Kind::kDone, {}, "every architecture proposed"};
    }
    void Tell(const v1::Trial& t) override {
      auto it = t.metrics().find("accuracy");
      Told().emplace_back(t.arch_hash(), it == t.metrics().end() ? -1 : it->second);
    }
    uint64_t position() const override { return next_; }
    v1::SearchSpace space_;
    uint64_t next_ = 0;
  };
  if (!Strategies().Find("test-recording")) {
    ASSERT_TRUE(
        Strategies()
            .Add({"test-recording",
                  "test only",
                  [](const v1::JobSpec& s, uint64_t) -> absl::StatusOr<std::unique_ptr<Strategy>> {
                    return std::make_unique<Recording>(s.search_space());
                  },
                  {},
                  {}})
            .ok());
  }
  v1::Job a = Source(4);
  std::vector<std::pair<std::string, double>> expected;
  for (int i = 0; i < 4; ++i) {
    v1::Trial t = jm_->GetCandidate(a.id(), i).value();
    expected.emplace_back(t.arch_hash(), t.metrics().at("accuracy"));
  }
  v1::JobSpec spec = TinySpec(2, 1);
  spec.mutable_strategy()->set_name("test-recording");
  spec.mutable_budget()->set_epochs(9);  // another recipe: prior observations
  spec.mutable_warm_start()->add_jobs(a.id());
  Told().clear();
  v1::Job b = Submit(spec);
  EXPECT_EQ(Told(), expected) << "told at submission, in the source's finish order";
  auto own = Train(w_, 1);
  Told().clear();
  Open();
  ASSERT_GE(Told().size(), 5u) << "the priors, then the job's own finished trial";
  const std::vector<std::pair<std::string, double>> first4(Told().begin(), Told().begin() + 4);
  EXPECT_EQ(first4, expected);
  EXPECT_EQ(Told()[4].first, *own.begin());
}

}  // namespace
}  // namespace nasforge
