// The nasforge CLI through cli::Run, as a user types it: argument handling (unknown flags,
// numbers, missing arguments, unreadable files), output formatting, the offline commands, and the
// job commands against a real controller over gRPC on loopback.
#include <google/protobuf/util/json_util.h>
#include <grpcpp/grpcpp.h>
#include <unistd.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "cli/app.h"
#include "cli/commands.h"
#include "cli/flags.h"
#include "controller/server.h"
#include "core/cost.h"
#include "core/jobspec.h"
#include "core/search_space.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nasforge/v1/nasforge.grpc.pb.h"
#include "report/candidate_table.h"
#include "report/format.h"
#include "report/pareto_plot.h"
#include "tests/test_util.h"

namespace nasforge::cli {
using namespace ::nasforge::report;  // NOLINT: the shared formatting of jobs, tables and plots
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

struct Outcome {
  int code = -1;
  std::string out, err;
};

Outcome Cli(const std::vector<std::string>& args) {
  std::vector<const char*> argv = {"nasforge"};
  for (const auto& a : args) argv.push_back(a.c_str());
  std::ostringstream out, err;
  Outcome o;
  o.code = Run(static_cast<int>(argv.size()), argv.data(), Io{.out = out, .err = err});
  o.out = out.str();
  o.err = err.str();
  return o;
}

std::string Source(const std::string& relative) {
  return std::string(NASFORGE_SOURCE_DIR) + "/" + relative;
}

std::string TempPath(const std::string& name) {
  return absl::StrCat(std::filesystem::temp_directory_path().string(), "/cli-test-", getpid(), "-",
                      name);
}

// ---- arguments ----

TEST(CliArgumentsTest, HelpListsEveryCommandAndSucceeds) {
  Outcome o = Cli({"--help"});
  EXPECT_EQ(o.code, 0);
  for (const char* cmd : {"submit", "status", "watch", "cancel", "candidates", "jobs", "pareto",
                          "cost", "space", "token", "bench", "--controller", "--token-file"}) {
    EXPECT_THAT(o.out, HasSubstr(cmd));
  }
  Outcome sub = Cli({"pareto", "--help"});
  EXPECT_EQ(sub.code, 0);
  EXPECT_THAT(sub.out, HasSubstr("--where"));
  EXPECT_THAT(sub.out, HasSubstr("--limit"));
}

// A command group registered from test code: listed by --help, its typed flags checked like
// the built-ins', run through Run with its exit code, completed by the completion script.
TEST(CliArgumentsTest, ACommandRegisteredFromTestCodeRuns) {
  ASSERT_TRUE(CommandGroups()
                  .Add({"greeting", 900,
                        [](CLI::App& app, CommandContext& c) {
                          auto times = std::make_shared<int>(1);
                          CLI::App* cmd = app.add_subcommand("greet", "says hello (a test's)");
                          cmd->add_option("--times", *times, "how often")->check(IntAtLeast(1));
                          cmd->callback([&c, times] {
                            for (int i = 0; i < *times; ++i) c.io.out << "hello\n";
                            c.exit_code = kExitOk;
                          });
                        }})
                  .ok());
  EXPECT_THAT(Cli({"--help"}).out, HasSubstr("says hello (a test's)"));
  Outcome o = Cli({"greet", "--times", "2"});
  EXPECT_EQ(o.code, kExitOk) << o.err;
  EXPECT_EQ(o.out, "hello\nhello\n");
  Outcome bad = Cli({"greet", "--times", "0"});
  EXPECT_EQ(bad.code, kExitUsage);
  EXPECT_THAT(bad.err, HasSubstr("--times"));
  EXPECT_THAT(Cli({"completion", "bash"}).out, HasSubstr("greet"));
}

TEST(CliArgumentsTest, NoCommandIsAUsageError) {
  Outcome o = Cli({});
  EXPECT_EQ(o.code, kExitUsage);
  EXPECT_THAT(o.err, HasSubstr("error:"));
}

TEST(CliArgumentsTest, AMisspelledFlagIsRefusedNamingIt) {
  // Before CLI11 an unknown flag was ignored: `--limt 5` printed the whole front.
  Outcome o = Cli({"pareto", "job-1", "--limt", "5"});
  EXPECT_EQ(o.code, kExitUsage);
  EXPECT_THAT(o.err, HasSubstr("unknown flag '--limt' for 'nasforge pareto'; did you mean "
                               "'--limit'?"));
  EXPECT_EQ(o.out, "");
  // Connection flags stay valid after the command; a typo of one is named too.
  EXPECT_THAT(Cli({"status", "job-1", "--controler", "h:1"}).err,
              HasSubstr("did you mean '--controller'?"));
  EXPECT_THAT(Cli({"--controller=127.0.0.1:1", "sbumit", "a.yaml"}).err,
              HasSubstr("unknown command 'sbumit' for 'nasforge'; did you mean 'submit'?"));
  EXPECT_THAT(Cli({"token", "craete"}).err,
              HasSubstr("unknown command 'craete' for 'nasforge token'; did you mean 'create'?"));
  Outcome far = Cli({"frobnicate"});
  EXPECT_EQ(far.code, kExitUsage);
  EXPECT_THAT(far.err, HasSubstr("unknown command 'frobnicate' for 'nasforge'"));
  EXPECT_THAT(far.err, ::testing::Not(HasSubstr("did you mean")));
}

// The bash completion script is valid bash and completes commands, subcommands and flags (run
// through bash itself with COMP_WORDS set as bash would).
TEST(CliArgumentsTest, BashCompletionCompletesCommandsAndFlags) {
  Outcome o = Cli({"completion", "bash"});
  ASSERT_EQ(o.code, 0) << o.err;
  const std::string script = TempPath("nasforge.bash");
  std::ofstream(script) << o.out;
  auto complete = [&](const std::string& words) {
    const std::string out = TempPath("complete.out");
    const std::string cmd = absl::StrCat(
        "bash -c 'source ", script, "; COMP_WORDS=(", words,
        "); COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); _nasforge; echo \"${COMPREPLY[*]}\"' > ", out,
        " 2>&1");
    EXPECT_EQ(std::system(cmd.c_str()), 0) << cmd;
    std::stringstream ss;
    ss << std::ifstream(out).rdbuf();
    return ss.str();
  };
  EXPECT_THAT(complete("nasforge su"), HasSubstr("submit"));
  EXPECT_THAT(complete("nasforge pareto job-1 --wh"), HasSubstr("--where"));
  EXPECT_THAT(complete("nasforge --controller h:1 jobs --sta"), HasSubstr("--state"));
  EXPECT_THAT(complete("nasforge token c"), HasSubstr("create"));
  EXPECT_THAT(complete("nasforge status job-1 --contr"), HasSubstr("--controller"));
  EXPECT_EQ(Cli({"completion", "fish"}).code, kExitUsage);
}

TEST(CliArgumentsTest, NumbersAreParsedWithErrorsNamingTheFlag) {
  const std::string space = Source("search_spaces/nb201_cifar.yaml");
  struct Case {
    std::vector<std::string> args;
    std::string expected;
  };
  for (const Case& c : std::vector<Case>{
           {{"pareto", "j", "--limit", "abc"}, "--limit: 'abc' is not an integer"},
           {{"pareto", "j", "--limit", "-1"}, "--limit: -1 must be >= 0"},
           {{"space", "sample", space, "-n", "0"}, "--count: 0 must be >= 1"},
           {{"space", "sample", space, "-n", "2x"}, "--count: '2x' is not an integer"},
           {{"space", "sample", space, "--seed", "-1"}, "--seed: -1 must be >= 0"},
           {{"bench", "strategies", "--table", "t", "--fitness-column", "f", "--report-column", "r",
             "--queries", "1.5"},
            "--queries: '1.5' is not an integer"},
           {{"bench", "early-stopping", "--table", "t", "--low-cost", "cheap"},
            "--low-cost: 'cheap' is not a number"},
           {{"cost", "a.yaml", "--resolution", "0"}, "--resolution: 0 must be >= 1"},
       }) {
    Outcome o = Cli(c.args);
    EXPECT_EQ(o.code, kExitUsage) << absl::StrJoin(c.args, " ");
    EXPECT_THAT(o.err, HasSubstr(c.expected)) << absl::StrJoin(c.args, " ");
  }
}

TEST(CliArgumentsTest, MissingArgumentsAndBadChoicesAreNamed) {
  EXPECT_THAT(Cli({"status"}).err, HasSubstr("JOB is required"));
  EXPECT_THAT(Cli({"submit"}).err, HasSubstr("JOB.yaml is required"));
  EXPECT_THAT(Cli({"space"}).err, HasSubstr("subcommand"));
  Outcome role = Cli({"token", "create", "--file", "f", "--name", "n", "--role", "root"});
  EXPECT_EQ(role.code, kExitUsage);
  EXPECT_THAT(role.err, HasSubstr("--role"));
  Outcome tls = Cli({"status", "j", "--tls-cert", "c.pem"});
  EXPECT_EQ(tls.code, kExitUsage);
  EXPECT_THAT(tls.err, HasSubstr("--tls-key"));
  Outcome both = Cli({"bench", "early-stopping", "--job", "a.yaml", "--table", "t.csv"});
  EXPECT_EQ(both.code, kExitUsage);
  EXPECT_THAT(both.err, HasSubstr("--job excludes --table"));
  Outcome neither = Cli({"bench", "early-stopping"});
  EXPECT_EQ(neither.code, kExitUsage);
  EXPECT_THAT(neither.err, HasSubstr("--job or --table is required"));
}

TEST(CliArgumentsTest, UnreadableFilesAreUsageErrorsNamingTheArgument) {
  Outcome submit = Cli({"submit", "/nonexistent/job.yaml"});
  EXPECT_EQ(submit.code, kExitUsage);
  EXPECT_THAT(submit.err, HasSubstr("JOB.yaml '/nonexistent/job.yaml': cannot read it"));
  Outcome cost = Cli({"cost", "/nonexistent/arch.yaml"});
  EXPECT_EQ(cost.code, kExitUsage);
  EXPECT_THAT(cost.err, HasSubstr("ARCH.yaml '/nonexistent/arch.yaml'"));
}

TEST(CliArgumentsTest, AnUnreachableControllerFailsWithAHint) {
  Outcome o = Cli({"status", "job-1", "--controller", "127.0.0.1:1"});
  EXPECT_EQ(o.code, kExitFailed);
  EXPECT_THAT(o.err, HasSubstr("is nasforge-controller running at --controller?"));
}

TEST(CliArgumentsTest, PlainTextBeyondLoopbackNeedsInsecure) {
  Outcome o = Cli({"--controller", "10.1.2.3:50051", "jobs"});
  EXPECT_EQ(o.code, kExitUsage);
  EXPECT_THAT(o.err, HasSubstr("insecure"));
}

// ---- formatting ----

TEST(CliFormatTest, NumbersDurationsAndStates) {
  EXPECT_EQ(HumanNumber(1234567), "1.235M");
  EXPECT_EQ(HumanNumber(66200), "66.2K");
  EXPECT_EQ(HumanNumber(3.2e9), "3.200G");
  EXPECT_EQ(HumanNumber(0.5), "0.5");
  EXPECT_EQ(HumanDuration(42), "42s");
  EXPECT_EQ(HumanDuration(185), "3m05s");
  EXPECT_EQ(HumanDuration(7620), "2h07m");
  EXPECT_EQ(HumanDuration(-1), "-");
  EXPECT_EQ(ShortState("JOB_RUNNING"), "running");
  EXPECT_EQ(ShortState("TRIAL_SUCCEEDED"), "succeeded");
}

v1::Job SampleJob() {
  v1::Job j;
  j.set_id("job-abc");
  j.mutable_spec()->set_name("demo");
  j.mutable_spec()->mutable_strategy()->set_name("evolution");
  j.mutable_spec()->mutable_budget()->set_max_trials(8);
  j.mutable_spec()->mutable_budget()->set_seed(3);
  j.mutable_spec()->add_objectives()->set_metric("accuracy");
  j.set_state(v1::JOB_RUNNING);
  j.mutable_counts()->set_succeeded(3);
  j.mutable_counts()->set_stopped(1);
  j.mutable_counts()->set_running(2);
  j.mutable_counts()->set_queued(1);
  j.mutable_counts()->set_rejected_by_cost(5);
  j.set_best_objective(0.875);
  j.mutable_create_time()->set_seconds(1000);
  return j;
}

TEST(CliFormatTest, JobStatusAndProgress) {
  const std::string status = FormatJob(SampleJob());
  EXPECT_THAT(status, HasSubstr("job        job-abc  (demo)\n"));
  EXPECT_THAT(status, HasSubstr("state      running\n"));
  EXPECT_THAT(status, HasSubstr("strategy   evolution, seed 3\n"));
  EXPECT_THAT(status, HasSubstr("trials     3 succeeded, 1 stopped, 2 running, 1 queued, 0 failed, "
                                "0 cancelled (budget 8)\n"));
  EXPECT_THAT(status, HasSubstr("rejected   5 candidates over a cost bound\n"));
  EXPECT_THAT(status, HasSubstr("best       accuracy = 0.875\n"));
  // 4 of 8 finished after 100 s: half the bar, 100 s to go.
  EXPECT_EQ(ProgressLine(SampleJob(), 1100),
            "[############............] 4/8 done  2 running  0 failed  best accuracy 0.875  "
            "elapsed 1m40s  eta 1m40s");
  // Variants beyond the budget: in the total, and named.
  v1::Job compressing = SampleJob();
  compressing.mutable_counts()->set_variants(4);
  EXPECT_THAT(ProgressLine(compressing, 1100), HasSubstr("] 4/12 (4 variants) done  2 running"));
  v1::Job none;
  EXPECT_THAT(ProgressLine(none, 0), HasSubstr("0/1 done"));
  EXPECT_THAT(ProgressLine(none, 0), HasSubstr("best -"));
}

TEST(CliFormatTest, TrialTableAndJobList) {
  google::protobuf::RepeatedPtrField<v1::Trial> trials;
  v1::Trial* t = trials.Add();
  t->set_id(7);
  t->set_state(v1::TRIAL_SUCCEEDED);
  (*t->mutable_metrics())["accuracy"] = 0.91234;
  (*t->mutable_metrics())["macs"] = 2828000;
  (*t->mutable_metrics())["params"] = 66200;
  (*t->mutable_metrics())["epochs"] = 3;
  *t->mutable_architecture() = SampleArchitecture(testing::LoadSmallSpace(), 1);
  const std::vector<std::string> lines = absl::StrSplit(FormatTrials(trials), '\n');
  ASSERT_GE(lines.size(), 2u);
  EXPECT_THAT(lines[0], HasSubstr("trial state"));
  EXPECT_THAT(lines[1], HasSubstr("7     succeeded  0.9123    -         2.828M    66.2K"));
  EXPECT_THAT(lines[1], HasSubstr(ArchSummary(t->architecture())));
  t->mutable_variant()->set_of(3);
  t->mutable_variant()->mutable_recipe()->set_name("prune");
  EXPECT_THAT(FormatTrials(trials),
              HasSubstr("[prune of 3] " + ArchSummary(t->architecture())));  // pareto --variants
  v1::ListJobsResponse jobs;
  *jobs.add_jobs() = SampleJob();
  EXPECT_THAT(FormatJobList(jobs), HasSubstr("job-abc            running    4      8      demo"));
  EXPECT_THAT(ProtoJson(SampleJob()), HasSubstr("\"best_objective\": 0.875"));
}

// ---- offline commands ----

TEST(CliFormatTest, CandidateColumnsFollowTheJobAndCsvQuotes) {
  v1::JobSpec spec;
  spec.add_objectives()->set_metric("accuracy");
  spec.add_objectives()->set_metric("latency_ms@edge");
  spec.add_constraints()->set_metric("params");
  spec.add_constraints()->set_metric("accuracy");  // listed once
  spec.add_hardware_targets()->set_name("edge");
  const auto cols = CandidateColumns(spec);
  EXPECT_EQ(absl::StrJoin(cols, ","),
            "trial,state,accuracy,latency_ms@edge,params,macs,train_seconds,epochs,worker_id,arch,"
            "arch_hash");
  google::protobuf::RepeatedPtrField<v1::Trial> trials;
  v1::Trial* t = trials.Add();
  t->set_id(7);
  t->set_state(v1::TRIAL_SUCCEEDED);
  t->set_worker_id("w,\"1\"");
  (*t->mutable_metrics())["accuracy"] = 0.91234567891234;
  const std::string csv = CandidatesCsv(trials, {"trial", "accuracy", "params", "worker_id"});
  EXPECT_EQ(csv, "trial,accuracy,params,worker_id\n7,0.9123456789,,\"w,\"\"1\"\"\"\n");
  const std::string table = CandidatesTable(trials, {"trial", "state", "params"});
  EXPECT_EQ(table, "trial  state      params\n7      succeeded  -\n");
  // With compression recipes: which trial a variant was made from, its size and its parent's
  // accuracy.
  auto* r = spec.mutable_compression()->add_recipes();
  r->set_name("q8");
  r->mutable_int8();
  EXPECT_EQ(absl::StrJoin(CandidateColumns(spec), ","),
            "trial,state,variant,accuracy,latency_ms@edge,params,macs,size_bytes,parent_accuracy,"
            "train_seconds,epochs,worker_id,arch,arch_hash");
  t->mutable_variant()->set_of(3);
  *t->mutable_variant()->mutable_recipe() = *r;
  EXPECT_EQ(CandidatesCsv(trials, {"trial", "variant"}), "trial,variant\n7,q8 of 3\n");
}

TEST(CliFormatTest, TheParetoSvgDrawsEveryFinitePointAndTheFront) {
  std::vector<PlotPoint> points = {{1, 0.5, false, "a"},
                                   {2, 0.9, true, "b <x>"},
                                   {0.5, 0.7, true, "c"},
                                   {NAN, 0.1, false, "no x"}};
  const std::string svg = ParetoSvg(points, {"Front & more", "params (min)", "accuracy (max)"});
  EXPECT_THAT(svg, ::testing::StartsWith("<svg xmlns=\"http://www.w3.org/2000/svg\""));
  EXPECT_THAT(svg, ::testing::EndsWith("</svg>\n"));
  auto count = [&](const std::string& needle) {
    size_t n = 0;
    for (size_t at = svg.find(needle); at != std::string::npos; at = svg.find(needle, at + 1)) ++n;
    return n;
  };
  EXPECT_EQ(count("<circle class=\"candidate\""), 1u);
  EXPECT_EQ(count("<circle class=\"front\""), 2u);
  EXPECT_EQ(count("<polyline class=\"front-line\""), 1u);
  EXPECT_THAT(svg, HasSubstr("<title>b &lt;x&gt;</title>"));  // hover text, escaped
  EXPECT_THAT(svg, HasSubstr("Front &amp; more"));
  EXPECT_THAT(svg, HasSubstr("3 candidates, 2 on the front, 1 without both values left out"));
}

TEST(CliOfflineTest, CostPrintsTheCostModelsFigures) {
  const std::string file = Source("search_spaces/reference/efficientnet_b0.yaml");
  v1::Architecture arch;
  ASSERT_TRUE(
      YamlToMessage(testing::ReadSourceFile("search_spaces/reference/efficientnet_b0.yaml"), &arch)
          .ok());
  const ArchCost cost = ComputeCost(arch);
  Outcome o = Cli({"cost", file});
  ASSERT_EQ(o.code, 0) << o.err;
  EXPECT_THAT(o.out, HasSubstr(absl::StrCat("macs   ", cost.macs, " (")));
  EXPECT_THAT(o.out, HasSubstr(absl::StrCat("params ", cost.params, " (")));
  EXPECT_THAT(o.out, HasSubstr(absl::StrCat("hash   ", ArchHash(arch))));
  Outcome json = Cli({"cost", file, "--resolution", "300", "--json"});
  ASSERT_EQ(json.code, 0) << json.err;
  auto j = nlohmann::json::parse(json.out);
  EXPECT_EQ(j["resolution"], 300);
  EXPECT_GT(j["macs"].get<int64_t>(), cost.macs) << "a larger input costs more";
  Outcome layers = Cli({"cost", file, "--layers"});
  EXPECT_GT(std::count(layers.out.begin(), layers.out.end(), '\n'), 50);
}

TEST(CliOfflineTest, SpaceSampleIsReproducibleAndEachArchitectureIsValid) {
  const std::string file = Source("search_spaces/mbconv_small.yaml");
  Outcome a = Cli({"space", "sample", file, "-n", "3", "--seed", "7", "--json"});
  Outcome b = Cli({"space", "sample", file, "--count", "3", "--seed", "7", "--json"});
  ASSERT_EQ(a.code, 0) << a.err;
  EXPECT_EQ(a.out, b.out) << "the same seed, the same architectures";
  const std::vector<std::string> lines = absl::StrSplit(a.out, '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 3u);
  for (const auto& line : lines) {
    auto j = nlohmann::json::parse(line);
    v1::Architecture arch;
    ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(j["architecture"].dump(), &arch).ok());
    EXPECT_TRUE(ValidateArchitecture(arch, "architecture").ok());
    EXPECT_EQ(j["hash"], ArchHash(arch));
    EXPECT_EQ(j["macs"], ComputeCost(arch).macs);
  }
  Outcome describe = Cli({"space", "describe", file});
  ASSERT_EQ(describe.code, 0) << describe.err;
  EXPECT_THAT(describe.out, HasSubstr("kind: mbconv"));
  EXPECT_THAT(describe.out, HasSubstr(" architectures"));
  Outcome bad = Cli({"space", "describe", Source("search_spaces/examples/nb201_tabular.yaml")});
  EXPECT_EQ(bad.code, kExitUsage) << "a job spec is not a search space";
}

TEST(CliOfflineTest, TokensAreShownOnceListedWithoutSecretsAndRevoked) {
  const std::string file = TempPath("tokens");
  std::filesystem::remove(file);
  Outcome made = Cli({"token", "create", "--file", file, "--name", "alice", "--role", "submit"});
  ASSERT_EQ(made.code, 0) << made.err;
  const std::string secret(absl::StripAsciiWhitespace(made.out));
  EXPECT_GE(secret.size(), 32u);
  EXPECT_THAT(made.err, Not(HasSubstr(secret))) << "the token goes to stdout alone";
  Outcome list = Cli({"token", "list", "--file", file});
  ASSERT_EQ(list.code, 0) << list.err;
  EXPECT_THAT(list.out, HasSubstr("alice"));
  EXPECT_THAT(list.out, HasSubstr("submit"));
  EXPECT_THAT(list.out, Not(HasSubstr(secret)));
  Outcome again = Cli({"token", "create", "--file", file, "--name", "alice", "--role", "read"});
  EXPECT_EQ(again.code, kExitFailed) << "a name is created once";
  EXPECT_THAT(again.err, HasSubstr("alice"));
  ASSERT_EQ(Cli({"token", "revoke", "--file", file, "--name", "alice"}).code, 0);
  EXPECT_THAT(Cli({"token", "list", "--file", file}).out, Not(HasSubstr("alice")));
  std::filesystem::remove(file);
}

// ---- bench controller (figures are not asserted: a bench prints them) ----

TEST(CliBenchTest, ControllerBenchRunsEveryTrialThroughARealControllerAndRecovers) {
  const std::string store = TempPath("bench.db");
  std::filesystem::remove(store);
  Outcome o =
      Cli({"bench", "controller", "--store", "sqlite://" + store, "--trials", "60", "--workers",
           "3", "--window", "20", "--space", Source("search_spaces/nb201_cifar.yaml"), "--json"});
  ASSERT_EQ(o.code, 0) << o.err;
  auto j = nlohmann::json::parse(o.out);
  EXPECT_EQ(j["trials"], 60);
  EXPECT_EQ(j["report_results"]["calls"], 60) << "batch 1: one call per trial";
  // Most trials come with the previous report's answer, not from a LeaseTrial call of their own.
  EXPECT_LT(j["lease_trial"]["calls"].get<int>() - j["empty_leases"].get<int>(), 30);
  EXPECT_GT(j["pareto_front_size"].get<int>(), 0);
  EXPECT_GE(j["recovery_seconds"].get<double>(), 0);
  std::filesystem::remove(store);
  Outcome batched = Cli({"bench", "controller", "--store", "sqlite://" + store, "--trials", "60",
                         "--workers", "2", "--batch", "5", "--window", "20", "--no-recovery",
                         "--space", Source("search_spaces/nb201_cifar.yaml"), "--json"});
  ASSERT_EQ(batched.code, 0) << batched.err;
  auto b = nlohmann::json::parse(batched.out);
  EXPECT_EQ(b["trials"], 60);
  EXPECT_LE(b["report_results"]["calls"].get<int>(), 30) << "several reports per call";
  std::filesystem::remove(store);
  Outcome small = Cli({"bench", "controller", "--trials", "10000", "--space",
                       Source("search_spaces/resnet_small.yaml")});
  EXPECT_EQ(small.code, kExitUsage);
  EXPECT_THAT(small.err, HasSubstr("--trials: 10000 needs a space"));
}

// ---- job commands on a real controller ----

class CliJobTest : public ::testing::Test {
 protected:
  void SetUp() override {
    db_ = TempPath("jobs.db");
    std::filesystem::remove(db_);
    ControllerOptions o;
    o.listen = "127.0.0.1:0";
    o.metrics_listen = "";
    o.store_url = "sqlite://" + db_;
    auto c = Controller::Start(o);
    ASSERT_TRUE(c.ok()) << c.status();
    controller_ = std::move(*c);
    address_ = absl::StrCat("127.0.0.1:", controller_->port());
  }
  void TearDown() override {
    if (controller_) controller_->Shutdown();
    std::filesystem::remove(db_);
  }
  // The CLI with --controller before the command (as a global flag).
  Outcome Call(std::vector<std::string> args) {
    args.insert(args.begin(), {"--controller", address_});
    return Cli(args);
  }
  // One trial leased and reported by a worker over gRPC, with `accuracy`.
  void TrainOne(double accuracy) {
    auto workers = v1::WorkerService::NewStub(
        grpc::CreateChannel(address_, grpc::InsecureChannelCredentials()));
    grpc::ClientContext c1, c2, c3;
    v1::RegisterWorkerRequest reg;
    reg.set_worker_id("w1");
    reg.mutable_hardware()->set_name("cpu-1t");
    v1::RegisterWorkerResponse rr;
    ASSERT_TRUE(workers->RegisterWorker(&c1, reg, &rr).ok());
    v1::LeaseTrialRequest lr;
    lr.set_worker_id("w1");
    v1::LeaseTrialResponse lease;
    ASSERT_TRUE(workers->LeaseTrial(&c2, lr, &lease).ok());
    ASSERT_TRUE(lease.has_trial());
    v1::ReportResultRequest res;
    res.set_worker_id("w1");
    *res.mutable_lease() = lease.lease();
    (*res.mutable_metrics())["accuracy"] = accuracy;
    v1::ReportResultResponse ack;
    ASSERT_TRUE(workers->ReportResult(&c3, res, &ack).ok());
  }

  std::string db_, address_;
  std::unique_ptr<Controller> controller_;
};

TEST_F(CliJobTest, SubmitStatusListCandidatesParetoCancelAndWatch) {
  const std::string spec = Source("search_spaces/examples/nb201_tabular.yaml");
  Outcome submit = Call({"submit", spec});
  ASSERT_EQ(submit.code, 0) << submit.err;
  const std::string id(absl::StripAsciiWhitespace(submit.out));
  ASSERT_THAT(id, HasSubstr("job-"));

  // Connection flags may also follow the command.
  Outcome status = Cli({"status", id, "--controller", address_});
  ASSERT_EQ(status.code, 0) << status.err;
  EXPECT_THAT(status.out, HasSubstr("state      running"));
  EXPECT_THAT(status.out, HasSubstr("(budget 300)"));
  EXPECT_THAT(Call({"jobs"}).out, HasSubstr(id));
  auto listed = nlohmann::json::parse(Call({"jobs", "--json"}).out);
  EXPECT_EQ(listed["jobs"][0]["id"], id);

  TrainOne(0.915);
  Outcome candidates = Call({"candidates", id});
  ASSERT_EQ(candidates.code, 0) << candidates.err;
  // Columns follow the job: its objectives (accuracy, params) after trial and state.
  EXPECT_THAT(candidates.out, ::testing::StartsWith("trial  state      accuracy  params"));
  EXPECT_THAT(candidates.out, HasSubstr("succeeded  0.915 "));
  Outcome csv = Call({"candidates", id, "--format", "CSV"});
  ASSERT_EQ(csv.code, 0) << csv.err;
  EXPECT_THAT(csv.out, ::testing::StartsWith("trial,state,accuracy,params,macs,latency_ms,"));
  EXPECT_THAT(csv.out, HasSubstr("\n0,succeeded,0.915,"));
  EXPECT_EQ(Call({"candidates", id, "--format", "xml"}).code, kExitUsage);
  const std::string svg = TempPath("front.svg");
  Outcome plot = Call({"pareto", id, "--plot", svg});
  ASSERT_EQ(plot.code, 0) << plot.err;
  EXPECT_THAT(plot.err, HasSubstr("(1 candidates, 1 on the front)"));
  std::stringstream drawn_ss;
  drawn_ss << std::ifstream(svg).rdbuf();
  const std::string drawn = drawn_ss.str();
  EXPECT_THAT(drawn, HasSubstr("<svg"));
  EXPECT_THAT(drawn, HasSubstr("class=\"front\""));
  EXPECT_THAT(drawn, HasSubstr("params (min)"));
  std::filesystem::remove(svg);
  Outcome png = Call({"pareto", id, "--plot", "front.png"});
  EXPECT_EQ(png.code, kExitUsage);
  EXPECT_THAT(png.err, HasSubstr("--plot"));
  Outcome pareto = Call({"pareto", id, "--objectives", "accuracy:max", "--json"});
  ASSERT_EQ(pareto.code, 0) << pareto.err;
  auto front = nlohmann::json::parse(pareto.out);
  ASSERT_EQ(front["trials"].size(), 1u);
  EXPECT_DOUBLE_EQ(front["trials"][0]["metrics"]["accuracy"].get<double>(), 0.915);
  Outcome none = Call({"pareto", id, "--where", "accuracy>=0.99"});
  ASSERT_EQ(none.code, 0) << none.err;
  EXPECT_THAT(none.out, HasSubstr("0 non-dominated of 0 candidates"));
  Outcome bad_where = Call({"pareto", id, "--where", "accuracy=>1"});
  EXPECT_EQ(bad_where.code, kExitUsage);
  EXPECT_THAT(bad_where.err, HasSubstr("--where"));

  // A known architecture seeded into the running job; the same again is refused.
  const std::string best = Source("search_spaces/reference/nb201_best.yaml");
  Outcome enq = Call({"enqueue", id, best});
  ASSERT_EQ(enq.code, 0) << enq.err;
  EXPECT_THAT(enq.out, HasSubstr(" queued ("));
  Outcome twice = Call({"enqueue", id, best});
  EXPECT_EQ(twice.code, kExitFailed);
  EXPECT_THAT(twice.err, HasSubstr("already has this candidate"));

  Outcome cancel = Call({"cancel", id});
  ASSERT_EQ(cancel.code, 0) << cancel.err;
  EXPECT_EQ(cancel.out, id + " cancelled\n");
  Outcome watch = Call({"watch", id});
  EXPECT_EQ(watch.code, kExitJobNotSucceeded) << "a cancelled job did not succeed";
  EXPECT_THAT(watch.out, HasSubstr("job " + id + " cancelled"));

  // resume gives the cancelled job its cancelled trials back; extend adds or sets the budget.
  Outcome resume = Call({"resume", id});
  ASSERT_EQ(resume.code, 0) << resume.err;
  EXPECT_EQ(resume.out, id + " running, budget 301 trials\n") << "+ the cancelled enqueued one";
  Outcome extend = Call({"extend", id, "--add-trials", "5"});
  ASSERT_EQ(extend.code, 0) << extend.err;
  EXPECT_EQ(extend.out, id + " running, budget 306 trials\n");
  Outcome lower = Call({"extend", id, "--max-trials", "10"});
  EXPECT_EQ(lower.code, kExitUsage);
  EXPECT_THAT(lower.err, HasSubstr("max_trials: 10 is not above the job's budget of 306"));
  EXPECT_EQ(Call({"extend", id, "--add-trials", "1", "--max-trials", "400"}).code, kExitUsage);
  EXPECT_THAT(Call({"extend", id}).err, HasSubstr("add_trials"));
  Outcome again = Call({"resume", id});
  EXPECT_EQ(again.code, kExitFailed) << "a running job is not resumed";
  EXPECT_THAT(again.err, HasSubstr("only a cancelled or failed job is resumed"));

  EXPECT_THAT(Call({"jobs", "--state", "Running"}).out, HasSubstr(id));
  EXPECT_THAT(Call({"jobs", "--state", "cancelled", "--state", "failed"}).out,
              ::testing::Not(HasSubstr(id)));
  EXPECT_THAT(Call({"jobs", "--name", "NB201"}).out, HasSubstr(id));
  EXPECT_THAT(Call({"jobs", "--label", "team=x"}).out, ::testing::Not(HasSubstr(id)));
  Outcome bad_state = Call({"jobs", "--state", "done"});
  EXPECT_EQ(bad_state.code, kExitUsage);
  EXPECT_THAT(bad_state.err, HasSubstr("--state: 'done' is not one of"));

  Outcome running = Call({"delete", id});
  EXPECT_EQ(running.code, kExitFailed);
  EXPECT_THAT(running.err, HasSubstr("cancel it first"));
  ASSERT_EQ(Call({"cancel", id}).code, 0);
  // A job that starts from this one keeps it from being deleted while it runs.
  Outcome warm = Call({"submit", spec, "--warm-start", id});
  ASSERT_EQ(warm.code, 0) << warm.err;
  const std::string warm_id(absl::StripAsciiWhitespace(warm.out));
  EXPECT_THAT(Call({"status", warm_id}).out, HasSubstr("warm start "));
  Outcome used = Call({"delete", id});
  EXPECT_EQ(used.code, kExitFailed);
  EXPECT_THAT(used.err, HasSubstr("warm-starts from " + id));
  ASSERT_EQ(Call({"cancel", warm_id}).code, 0);
  EXPECT_THAT(Call({"submit", spec, "--warm-start", "job-nope"}).err,
              HasSubstr("warm_start.jobs[0]"));
  Outcome deleted = Call({"delete", id});
  ASSERT_EQ(deleted.code, 0) << deleted.err;
  EXPECT_THAT(deleted.out, HasSubstr(id + " deleted ("));
  EXPECT_THAT(Call({"jobs"}).out, ::testing::Not(HasSubstr(id)));
  EXPECT_THAT(Call({"status", id}).err, HasSubstr("NOT_FOUND"));
}

TEST_F(CliJobTest, AnInvalidSpecIsAUsageErrorNamingTheFieldAndCreatesNothing) {
  const std::string file = TempPath("bad.yaml");
  std::string yaml = testing::ReadSourceFile("search_spaces/examples/nb201_tabular.yaml");
  yaml.replace(yaml.find("max_trials: 300"), 15, "max_trials: 0");
  std::ofstream(file) << yaml;
  Outcome o = Call({"submit", file});
  EXPECT_EQ(o.code, kExitUsage);
  EXPECT_THAT(o.err, HasSubstr("budget.max_trials"));
  EXPECT_THAT(o.err, HasSubstr("INVALID_ARGUMENT"));
  EXPECT_THAT(o.err, Not(HasSubstr("hint: retrying"))) << "retrying cannot fix a bad spec";
  EXPECT_THAT(Call({"jobs"}).out, Not(HasSubstr("job-")));
  std::filesystem::remove(file);
  Outcome missing = Call({"status", "job-doesnotexist"});
  EXPECT_EQ(missing.code, kExitFailed);
  EXPECT_THAT(missing.err, HasSubstr("NOT_FOUND"));
}

TEST_F(CliJobTest, TheControllerAddressComesFromTheEnvironment) {
  ASSERT_EQ(setenv("NASFORGE_CONTROLLER", address_.c_str(), 1), 0);
  Outcome o = Cli({"jobs"});
  unsetenv("NASFORGE_CONTROLLER");
  EXPECT_EQ(o.code, 0) << o.err;
  EXPECT_THAT(o.out, HasSubstr("job"));
}

TEST_F(CliJobTest, HealthIsZeroOnlyWhileServing) {
  Outcome up = Call({"health"});
  EXPECT_EQ(up.code, 0) << up.err;
  EXPECT_EQ(up.out, "SERVING\n");
  const std::string address = address_;
  controller_->Shutdown();
  Outcome down = Cli({"--controller", address, "health", "--timeout", "2"});
  EXPECT_EQ(down.code, 1);
  EXPECT_THAT(down.err, HasSubstr("health " + address));
  EXPECT_EQ(Cli({"health", "--timeout", "0"}).code, 2) << "out of range";
}

TEST_F(CliJobTest, TheSameIdempotencyKeyNeverMakesASecondJob) {
  const std::string spec = Source("search_spaces/examples/nb201_tabular.yaml");
  Outcome a = Call({"submit", spec, "--idempotency-key", "k-1"});
  Outcome b = Call({"submit", spec, "--idempotency-key", "k-1"});
  ASSERT_EQ(a.code, 0) << a.err;
  ASSERT_EQ(b.code, 0) << b.err;
  EXPECT_EQ(a.out, b.out);
  auto listed = nlohmann::json::parse(Call({"jobs", "--json"}).out);
  EXPECT_EQ(listed["jobs"].size(), 1u);
}

}  // namespace
}  // namespace nasforge::cli
