// One conformance suite, run against every backend: SQLite (a temp file) and PostgreSQL (the
// cluster tests/pg_harness.sh starts; its URL comes in NASFORGE_TEST_PG_URL).
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <string>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "controller/store.h"
#include "core/hardware_targets.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace nasforge {
namespace {

using ::testing::HasSubstr;

std::string SqliteUrl() {
  static int n = 0;
  std::string p = absl::StrCat(std::filesystem::temp_directory_path().string(), "/nasforge-store-",
                               getpid(), "-", n++, ".db");
  std::filesystem::remove(p);
  return "sqlite://" + p;
}

class StoreConformanceTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (GetParam() == "postgresql") {
      const char* url = std::getenv("NASFORGE_TEST_PG_URL");
      ASSERT_NE(url, nullptr) << "run under tests/pg_harness.sh (ctest does)";
      url_ = url;
      // Each test gets a fresh schema: drop what an earlier test made.
      auto s = OpenStore(url_);
      ASSERT_TRUE(s.ok()) << s.status();
      Drop();
    } else {
      url_ = SqliteUrl();
    }
    auto s = OpenStore(url_);
    ASSERT_TRUE(s.ok()) << s.status();
    store_ = std::move(*s);
  }
  // Runs one SQL statement on the database with the backend's own client.
  void Sql(const std::string& sql) {
    std::string quoted;
    for (char c : sql) {
      if (c == '\'') {
        quoted += "'\\''";
      } else {
        quoted += c;
      }
    }
    std::string cmd =
        GetParam() == "postgresql"
            ? absl::StrCat("psql -q -X -v ON_ERROR_STOP=1 \"", url_, "\" -c '", quoted, "'")
            : absl::StrCat("sqlite3 '", url_.substr(9), "' '", quoted, "'");
    ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  }
  void Drop() {
    std::string cmd = absl::StrCat("psql -q -X \"", url_,
                                   "\" -c 'DROP TABLE IF EXISTS jobs, trials, workers, latencies, "
                                   "schema_migrations' >/dev/null 2>&1");
    ASSERT_EQ(std::system(cmd.c_str()), 0);
  }

  static v1::Job MakeJob(const std::string& id, const std::string& key, int64_t t) {
    v1::Job j;
    j.set_id(id);
    j.set_idempotency_key(key);
    j.set_state(v1::JOB_RUNNING);
    j.mutable_create_time()->set_seconds(t);
    j.mutable_spec()->set_name("job " + id);
    j.mutable_spec()->mutable_budget()->set_max_trials(7);
    j.set_version(1);
    return j;
  }
  static v1::Trial MakeTrial(const std::string& job, int64_t id, v1::TrialState s) {
    v1::Trial t;
    t.set_job_id(job);
    t.set_id(id);
    t.set_state(s);
    t.set_arch_hash(absl::StrCat("hash", id));
    (*t.mutable_metrics())["accuracy"] = 0.5 + id / 100.0;
    auto* p = t.add_curve();
    p->set_epoch(1);
    p->set_value(0.25);
    t.set_version(1);
    return t;
  }

  std::string url_;
  std::unique_ptr<Store> store_;
};

TEST_P(StoreConformanceTest, MigratesToLatestSchema) {
  auto v = store_->SchemaVersion();
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(*v, static_cast<int>(SchemaMigrations().size()));
  EXPECT_TRUE(store_->Ping().ok());
  EXPECT_EQ(store_->Backend(), GetParam());
  // Opening again applies nothing twice.
  store_.reset();
  auto again = OpenStore(url_);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(*(*again)->SchemaVersion(), *v);
}

TEST_P(StoreConformanceTest, ASecondOwnerIsRefusedWhileTheFirstLives) {
  auto second = OpenStore(url_);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(second.status().message(), HasSubstr("owned by another controller"));
  store_.reset();
  auto third = OpenStore(url_);
  EXPECT_TRUE(third.ok()) << third.status();
}

TEST_P(StoreConformanceTest, AStandbyTakesOverWhenTheOwnerGoes) {
  StoreOptions o;
  o.standby = true;
  o.standby_poll = absl::Milliseconds(20);
  absl::Notification opened;
  absl::StatusOr<std::unique_ptr<Store>> standby;
  std::thread t([&] {
    standby = OpenStore(url_, o);
    opened.Notify();
  });
  EXPECT_FALSE(opened.HasBeenNotified());
  store_.reset();  // the owner goes
  t.join();
  ASSERT_TRUE(standby.ok()) << standby.status();
  EXPECT_TRUE((*standby)->Ping().ok());
}

TEST_P(StoreConformanceTest, AnOlderVersionNeverOverwritesANewerOne) {
  // The reordering a delayed writer thread could cause: the acknowledged RUNNING epoch 3
  // (version 3) is committed first, the stale QUEUED epoch 2 snapshot (version 2) after it.
  v1::Trial newer = MakeTrial("j", 0, v1::TRIAL_RUNNING);
  newer.set_lease_epoch(3);
  newer.set_version(3);
  v1::Trial older = MakeTrial("j", 0, v1::TRIAL_QUEUED);
  older.set_lease_epoch(2);
  older.set_version(2);
  v1::Job job_new = MakeJob("j", "", 1), job_old = MakeJob("j", "", 1);
  job_new.set_version(5);
  job_new.set_state(v1::JOB_CANCELLED);
  job_old.set_version(4);
  WriteBatch first, second;
  first.trials = {newer};
  first.jobs = {job_new};
  second.trials = {older};
  second.jobs = {job_old};
  ASSERT_TRUE(store_->Write(first).ok());
  ASSERT_TRUE(store_->Write(second).ok());
  auto trials = store_->LoadTrials("j");
  ASSERT_TRUE(trials.ok());
  ASSERT_EQ(trials->size(), 1u);
  EXPECT_EQ((*trials)[0].state(), v1::TRIAL_RUNNING);
  EXPECT_EQ((*trials)[0].lease_epoch(), 3u);
  EXPECT_EQ((*store_->LoadJobs())[0].state(), v1::JOB_CANCELLED);  // a cancel is never undone
  // Within one batch too (the writer merges groups): the newest wins whatever the order.
  v1::Trial newest = newer;
  newest.set_version(7);
  newest.set_state(v1::TRIAL_SUCCEEDED);
  WriteBatch mixed;
  mixed.trials = {newest, older};
  mixed.Compact();
  ASSERT_EQ(mixed.trials.size(), 1u);
  ASSERT_TRUE(store_->Write(mixed).ok());
  EXPECT_EQ((*store_->LoadTrials("j"))[0].state(), v1::TRIAL_SUCCEEDED);
}

TEST_P(StoreConformanceTest, RefusesASchemaNewerThanTheBinary) {
  store_.reset();
  Sql("INSERT INTO schema_migrations VALUES (999, 0)");
  auto s = OpenStore(url_);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(s.status().message(), HasSubstr("newer than this binary"));
  Sql("DELETE FROM schema_migrations WHERE version = 999");
}

TEST_P(StoreConformanceTest, MigratesAPopulatedVersion1Database) {
  store_.reset();
  if (GetParam() == "postgresql") Drop();
  if (GetParam() == "sqlite") std::filesystem::remove(url_.substr(9));
  // A schema-1 database as the previous release wrote it, with a job and a finished trial.
  Sql("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at_ms BIGINT NOT "
      "NULL)");
  Sql(SchemaMigrations()[0]);
  Sql("INSERT INTO schema_migrations VALUES (1, 0)");
  Sql("INSERT INTO jobs VALUES ('old', '', 2, 5, '{\"id\":\"old\",\"state\":\"JOB_RUNNING\"}')");
  Sql("INSERT INTO trials VALUES ('old', 0, 3, 'h0', "
      "'{\"job_id\":\"old\",\"id\":\"0\",\"state\":\"TRIAL_SUCCEEDED\",\"lease_epoch\":\"2\"}')");
  auto s = OpenStore(url_);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(*(*s)->SchemaVersion(), static_cast<int>(SchemaMigrations().size()));
  auto trials = (*s)->LoadTrials("old");
  ASSERT_TRUE(trials.ok()) << trials.status();
  ASSERT_EQ(trials->size(), 1u);
  EXPECT_EQ((*trials)[0].lease_epoch(), 2u);
  // The migrated row (version 0) takes the next write, version 1.
  v1::Trial t = (*trials)[0];
  t.set_version(1);
  t.set_lease_epoch(3);
  WriteBatch b;
  b.trials = {t};
  ASSERT_TRUE((*s)->Write(b).ok());
  EXPECT_EQ((*(*s)->LoadTrials("old"))[0].lease_epoch(), 3u);
}

TEST_P(StoreConformanceTest, RoundTripsEveryRecordKind) {
  WriteBatch b;
  b.jobs = {MakeJob("j2", "", 20), MakeJob("j1", "key-1", 10)};
  b.trials = {MakeTrial("j1", 1, v1::TRIAL_SUCCEEDED), MakeTrial("j1", 0, v1::TRIAL_RUNNING),
              MakeTrial("j2", 0, v1::TRIAL_QUEUED)};
  v1::Worker w;
  w.set_id("w1");
  w.mutable_hardware()->set_name("cpu-1t");
  b.workers = {w};
  ASSERT_TRUE(store_->Write(b).ok());

  auto jobs = store_->LoadJobs();
  ASSERT_TRUE(jobs.ok()) << jobs.status();
  ASSERT_EQ(jobs->size(), 2u);
  EXPECT_EQ((*jobs)[0].id(), "j1");  // ordered by creation time
  EXPECT_EQ((*jobs)[0].spec().budget().max_trials(), 7);
  EXPECT_EQ((*jobs)[0].idempotency_key(), "key-1");

  auto trials = store_->LoadTrials("j1");
  ASSERT_TRUE(trials.ok());
  ASSERT_EQ(trials->size(), 2u);
  EXPECT_EQ((*trials)[0].id(), 0);  // ordered by id
  EXPECT_EQ((*trials)[1].state(), v1::TRIAL_SUCCEEDED);
  EXPECT_DOUBLE_EQ((*trials)[1].metrics().at("accuracy"), 0.51);
  EXPECT_EQ((*trials)[1].curve_size(), 1);
  EXPECT_EQ(store_->LoadTrials("nope")->size(), 0u);

  auto workers = store_->LoadWorkers();
  ASSERT_TRUE(workers.ok());
  ASSERT_EQ(workers->size(), 1u);
  EXPECT_EQ((*workers)[0].hardware().name(), "cpu-1t");
}

TEST_P(StoreConformanceTest, ANewerVersionReplacesTheRecord) {
  WriteBatch b;
  b.jobs = {MakeJob("j1", "", 1)};
  b.trials = {MakeTrial("j1", 0, v1::TRIAL_RUNNING)};
  ASSERT_TRUE(store_->Write(b).ok());
  b.jobs[0].set_state(v1::JOB_SUCCEEDED);
  b.jobs[0].set_version(2);
  b.trials[0].set_state(v1::TRIAL_SUCCEEDED);
  b.trials[0].set_version(2);
  (*b.trials[0].mutable_metrics())["accuracy"] = 0.9;
  ASSERT_TRUE(store_->Write(b).ok());
  EXPECT_EQ(store_->LoadJobs()->at(0).state(), v1::JOB_SUCCEEDED);
  auto t = store_->LoadTrials("j1");
  ASSERT_EQ(t->size(), 1u);
  EXPECT_DOUBLE_EQ(t->at(0).metrics().at("accuracy"), 0.9);
}

TEST_P(StoreConformanceTest, ALargeBatchWithRepeatedKeysKeepsTheNewestOfEach) {
  WriteBatch b;
  b.jobs = {MakeJob("j1", "", 1)};
  for (int i = 0; i < 1203; ++i) b.trials.push_back(MakeTrial("j1", i, v1::TRIAL_RUNNING));
  // Trial 7 twice more in the same batch: a newer record, then an older one arriving late.
  v1::Trial newer = MakeTrial("j1", 7, v1::TRIAL_SUCCEEDED);
  newer.set_version(5);
  v1::Trial older = MakeTrial("j1", 7, v1::TRIAL_QUEUED);
  older.set_version(3);
  b.trials.push_back(newer);
  b.trials.push_back(older);
  ASSERT_TRUE(store_->Write(b).ok());
  auto t = store_->LoadTrials("j1");
  ASSERT_TRUE(t.ok()) << t.status();
  ASSERT_EQ(t->size(), 1203u);
  EXPECT_EQ(t->at(7).state(), v1::TRIAL_SUCCEEDED);
  EXPECT_EQ(t->at(7).version(), 5u);
  EXPECT_EQ(t->at(1202).id(), 1202);
}

TEST_P(StoreConformanceTest, TheLatencyCacheKeepsTheFirstMeasurementOfEachKey) {
  auto measurement = [](const std::string& hash, int batch, double p50) {
    v1::LatencyMeasurement m;
    m.set_arch_hash(hash);
    m.set_profile("cpu-1t");
    m.set_batch_size(batch);
    m.set_threads(1);
    m.set_precision("fp32");
    m.set_p50_ms(p50);
    m.set_worker_id("w1");
    return m;
  };
  WriteBatch b;
  b.latencies = {measurement("a", 1, 1.5), measurement("a", 8, 4.0), measurement("b", 1, 2.0)};
  ASSERT_TRUE(store_->Write(b).ok());
  WriteBatch again;  // the same key measured again (after a restart): the first stays
  again.latencies = {measurement("a", 1, 9.9)};
  ASSERT_TRUE(store_->Write(again).ok());
  auto loaded = store_->LoadLatencies();
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  ASSERT_EQ(loaded->size(), 3u);
  std::map<std::pair<std::string, int>, double> p50;
  for (const auto& m : *loaded) p50[{m.arch_hash(), m.batch_size()}] = m.p50_ms();
  EXPECT_DOUBLE_EQ((p50[{"a", 1}]), 1.5);
  EXPECT_DOUBLE_EQ((p50[{"a", 8}]), 4.0);
  EXPECT_DOUBLE_EQ((p50[{"b", 1}]), 2.0);
}

// Schema 6: the key is the setting as one string, so runtimes and their options are part of
// it without columns of their own; an option at its default is the same setting as none.
TEST_P(StoreConformanceTest, TheLatencyCacheKeysRuntimeAndOptions) {
  auto measurement = [](const std::string& runtime, const std::string& channels_last, double p50) {
    v1::LatencyMeasurement m;
    m.set_arch_hash("a");
    m.set_profile("h100");
    m.set_batch_size(32);
    m.set_precision("bf16");
    m.set_runtime(runtime);
    if (!channels_last.empty()) (*m.mutable_options())["channels_last"] = channels_last;
    m.set_p50_ms(p50);
    return m;
  };
  WriteBatch b;
  b.latencies = {measurement("libtorch", "", 1.0), measurement("libtorch-cuda-graph", "", 0.5),
                 measurement("libtorch", "true", 0.8)};
  ASSERT_TRUE(store_->Write(b).ok());
  WriteBatch again;  // channels_last=false is libtorch's default: the first row's key
  again.latencies = {measurement("libtorch", "false", 9.9)};
  ASSERT_TRUE(store_->Write(again).ok());
  auto loaded = store_->LoadLatencies();
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  std::map<std::string, double> p50;
  for (const auto& m : *loaded) p50[LatencyKey(m)] = m.p50_ms();
  ASSERT_EQ(p50.size(), 3u);
  EXPECT_DOUBLE_EQ(p50["a|h100|batch=32;precision=bf16;runtime=libtorch;threads=0"], 1.0);
  EXPECT_DOUBLE_EQ(p50["a|h100|batch=32;precision=bf16;runtime=libtorch-cuda-graph;threads=0"],
                   0.5);
  EXPECT_DOUBLE_EQ(
      p50["a|h100|batch=32;precision=bf16;runtime=libtorch;threads=0;o.channels_last=true"], 0.8);
}

// A schema-5 cache (columns batch_size, threads, precision) migrates to setting keys equal to
// what LatencySetting gives its rows (LibTorch eager): a target of today finds them.
TEST_P(StoreConformanceTest, MigratesASchema5LatencyCache) {
  store_.reset();
  if (GetParam() == "postgresql") Drop();
  if (GetParam() == "sqlite") std::filesystem::remove(url_.substr(9));
  Sql("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at_ms BIGINT NOT "
      "NULL)");
  for (int v = 0; v < 5; ++v) {
    Sql(SchemaMigrations()[v]);
    Sql(absl::StrCat("INSERT INTO schema_migrations VALUES (", v + 1, ", 0)"));
  }
  Sql("INSERT INTO latencies VALUES ('h0', 'cpu-1t', 8, 1, 'fp32', "
      "'{\"arch_hash\":\"h0\",\"profile\":\"cpu-1t\",\"batch_size\":8,\"threads\":1,"
      "\"precision\":\"fp32\",\"p50_ms\":2.5}', 1)");
  auto s = OpenStore(url_);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(*(*s)->SchemaVersion(), static_cast<int>(SchemaMigrations().size()));
  v1::HardwareTarget t;
  t.set_profile("cpu-1t");
  t.set_batch_size(8);
  t.set_threads(1);
  t.set_precision("fp32");
  t.set_runtime("libtorch");
  auto loaded = (*s)->LoadLatencies();
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  ASSERT_EQ(loaded->size(), 1u);
  EXPECT_EQ(LatencyKey((*loaded)[0]), LatencyKey("h0", t));
  // The migrated row's key column is the same setting: measuring it again keeps the first.
  v1::LatencyMeasurement m = (*loaded)[0];
  m.set_runtime("libtorch");
  m.set_p50_ms(7.0);
  WriteBatch b;
  b.latencies = {m};
  ASSERT_TRUE((*s)->Write(b).ok());
  loaded = (*s)->LoadLatencies();
  ASSERT_EQ(loaded->size(), 1u);
  EXPECT_DOUBLE_EQ((*loaded)[0].p50_ms(), 2.5);
}

TEST_P(StoreConformanceTest, BatchIsAtomic) {
  // Two jobs with the same idempotency key violate the unique index: nothing of the batch lands.
  WriteBatch b;
  b.trials = {MakeTrial("j1", 0, v1::TRIAL_RUNNING)};
  b.jobs = {MakeJob("j1", "same", 1), MakeJob("j2", "same", 2)};
  absl::Status st = store_->Write(b);
  EXPECT_FALSE(st.ok());
  EXPECT_EQ(store_->LoadJobs()->size(), 0u);
  EXPECT_EQ(store_->LoadTrials("j1")->size(), 0u);
  // The store stays usable after a failed transaction.
  b.jobs.pop_back();
  EXPECT_TRUE(store_->Write(b).ok());
  EXPECT_EQ(store_->LoadJobs()->size(), 1u);
}

// A deleted job goes with its trials, after the upserts of its own batch; other jobs stay.
TEST_P(StoreConformanceTest, ADeletedJobGoesWithItsTrials) {
  WriteBatch b;
  b.jobs = {MakeJob("gone", "", 1), MakeJob("kept", "", 1)};
  for (int i = 0; i < 3; ++i) {
    b.trials.push_back(MakeTrial("gone", i, v1::TRIAL_SUCCEEDED));
    b.trials.push_back(MakeTrial("kept", i, v1::TRIAL_SUCCEEDED));
  }
  ASSERT_TRUE(store_->Write(b).ok());
  WriteBatch d;
  d.trials = {MakeTrial("gone", 3, v1::TRIAL_CANCELLED)};  // staged before the delete
  d.deleted_jobs = {"gone"};
  ASSERT_TRUE(store_->Write(d).ok());
  auto jobs = store_->LoadJobs();
  ASSERT_EQ(jobs->size(), 1u);
  EXPECT_EQ(jobs->at(0).id(), "kept");
  EXPECT_TRUE(store_->LoadTrials("gone")->empty());
  EXPECT_EQ(store_->LoadTrials("kept")->size(), 3u);
}

TEST_P(StoreConformanceTest, DataSurvivesReopen) {
  WriteBatch b;
  for (int i = 0; i < 50; ++i) b.trials.push_back(MakeTrial("j", i, v1::TRIAL_SUCCEEDED));
  b.jobs = {MakeJob("j", "", 1)};
  ASSERT_TRUE(store_->Write(b).ok());
  store_.reset();
  auto s = OpenStore(url_);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ((*s)->LoadTrials("j")->size(), 50u);
}

// A backend registered from test code (one line) is opened by its URL scheme like the built-ins.
TEST(StoreTest, ABackendRegisteredAtRunTimeIsOpenedByItsScheme) {
  ASSERT_TRUE(StoreBackends()
                  .Add({"test-memory", "test only",
                        [](absl::string_view, const StoreOptions& o) {
                          return OpenStore("sqlite://:memory:", o);
                        }})
                  .ok());
  auto s = OpenStore("test-memory://anything");
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ((*s)->Backend(), "sqlite");
}

INSTANTIATE_TEST_SUITE_P(Backends, StoreConformanceTest, ::testing::Values("sqlite", "postgresql"),
                         [](const auto& info) { return info.param; });

TEST(StoreTest, BadUrlsAreClearErrors) {
  EXPECT_THAT(std::string(OpenStore("mysql://root:secret@x").status().message()),
              HasSubstr("'mysql' is not a URL of a known backend (postgres, postgresql, sqlite"));
  EXPECT_THAT(std::string(OpenStore("mysql://root:secret@x").status().message()),
              ::testing::Not(HasSubstr("secret")));
  EXPECT_THAT(std::string(OpenStore("sqlite://").status().message()), HasSubstr("has no path"));
  EXPECT_THAT(OpenStore("sqlite:///nonexistent-dir/x/y.db").status().message(),
              HasSubstr("cannot open sqlite database"));
  auto pg = OpenStore("postgresql://nobody@127.0.0.1:1/none?connect_timeout=2");
  EXPECT_EQ(pg.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(pg.status().message(), HasSubstr("connection failed"));
}

}  // namespace
}  // namespace nasforge
