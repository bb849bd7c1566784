// PostgreSQL backend (libpqxx 6.4). pqxx exceptions are caught here and become Status values.
//
// Ownership: the store's one connection holds a session advisory lock (kOwnerLock) for as long as
// it lives; every write runs on that connection, so a write can only commit while the lock is
// held. After a reconnect the lock is taken again before anything else; if another controller
// took it meanwhile, this store has lost ownership and every later call fails with ABORTED.
//
// Outages: libpq connect timeout, TCP keepalives and a TCP user timeout bound how long a call can
// hang on a dead or black-holed server; a statement timeout bounds a stuck query. A broken
// connection is dropped and the next call reconnects (the StoreWriter retries with backoff).
#include "controller/store_postgres.h"

#include <unistd.h>

#include <cstdint>
#include <pqxx/pqxx>
#include <random>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "core/latency_runtimes.h"
#include "core/log.h"
#include "core/status.h"
#include "google/protobuf/util/time_util.h"

namespace nasforge {
namespace {

// Arbitrary constants ("nasf" + 1 / 2): the owner lock, and a lock that serialises concurrent
// migrations of controllers sharing one database.
constexpr int kLockClass = 0x6e617366;
constexpr int kOwnerLock = 1;
constexpr int kMigrationLock = 2;

// Raised inside Guard when the owner lock is held by another controller.
struct NotOwner : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Adds libpq's connect timeout, keepalives and TCP user timeout unless the URL sets them.
std::string WithTimeouts(const std::string& url, const std::string& app) {
  const std::pair<const char*, std::string> params[] = {
      {"connect_timeout", "5"},     {"keepalives", "1"},       {"keepalives_idle", "5"},
      {"keepalives_interval", "2"}, {"keepalives_count", "3"}, {"tcp_user_timeout", "10000"},
      {"application_name", app},
  };
  std::string out = url;
  bool uri = absl::StrContains(url, "://");
  bool has_query = absl::StrContains(url, "?");
  for (const auto& [k, v] : params) {
    if (absl::StrContains(url, absl::StrCat(k, "="))) continue;
    if (uri) {
      absl::StrAppend(&out, has_query ? "&" : "?", k, "=", v);
      has_query = true;
    } else {
      absl::StrAppend(&out, " ", k, "=", v);
    }
  }
  return out;
}

class PostgresStore final : public Store {
 public:
  PostgresStore(std::string url, StoreOptions options)
      : options_(options),
        app_(absl::StrFormat("nasforge-controller-%d-%08x", getpid(), std::random_device{}())),
        url_(WithTimeouts(url, app_)) {}

  // Releases the owner lock before the connection closes: the server frees a closed session's
  // locks only when its backend process has exited, a moment later, and a controller started
  // right after this one stops (or the next test) would be refused in that moment.
  ~PostgresStore() override {
    absl::MutexLock l(&mu_);
    if (!conn_ || !conn_->is_open() || lost_) return;
    try {
      pqxx::nontransaction n(*conn_);
      n.exec(absl::StrCat("SELECT pg_advisory_unlock(", kLockClass, ", ", kOwnerLock, ")"));
    } catch (const std::exception& e) {
      // The server is gone or the link is cut: the lock goes with the session.
      Log(LogLevel::kDebug, "store_unlock_skipped", {{"reason", e.what()}});
    }
  }

  absl::Status Init() {
    absl::MutexLock l(&mu_);
    bool waited = false;
    for (;;) {
      absl::Status st = Guard("open", [&]() -> absl::Status {
        mu_.AssertHeld();  // Guard runs it under mu_
        Connect();
        return absl::OkStatus();
      });
      if (!absl::IsFailedPrecondition(st) || !options_.standby) {
        NF_RETURN_IF_ERROR(st);
        break;
      }
      if (!waited) {
        Log(LogLevel::kInfo, "store_standby", {{"store", "postgresql"}, {"owner", st.message()}});
        waited = true;
      }
      mu_.Unlock();
      absl::SleepFor(options_.standby_poll);
      mu_.Lock();
    }
    if (waited) Log(LogLevel::kInfo, "store_owner_taken", {{"store", "postgresql"}});
    return Guard("migrate", [&]() -> absl::Status {
      mu_.AssertHeld();  // Guard runs it under mu_
      pqxx::work w(*conn_);
      w.exec(absl::StrCat("SELECT pg_advisory_xact_lock(", kLockClass, ", ", kMigrationLock, ")"));
      w.exec(
          "CREATE TABLE IF NOT EXISTS schema_migrations ("
          "version INTEGER PRIMARY KEY, applied_at_ms BIGINT NOT NULL)");
      int version =
          w.exec("SELECT COALESCE(MAX(version), 0) FROM schema_migrations")[0][0].as<int>();
      NF_RETURN_IF_ERROR(CheckSchemaNotNewer(version));
      const auto& m = SchemaMigrations();
      for (int v = version + 1; v <= static_cast<int>(m.size()); ++v) {
        w.exec(m[v - 1]);
        w.exec(absl::StrCat("INSERT INTO schema_migrations VALUES (", v, ", ",
                            absl::ToUnixMillis(absl::Now()), ")"));
      }
      w.commit();
      Prepare();
      return absl::OkStatus();
    });
  }

  absl::Status Write(const WriteBatch& b) override {
    absl::MutexLock l(&mu_);
    return Guard("write", [&]() -> absl::Status {
      mu_.AssertHeld();  // Guard runs it under mu_
      Connect();
      pqxx::work w(*conn_);
      for (const auto& j : b.jobs) {
        w.exec_prepared("upsert_job", j.id(), j.idempotency_key(), static_cast<int>(j.state()),
                        google::protobuf::util::TimeUtil::TimestampToMilliseconds(j.create_time()),
                        ToJsonBody(j), static_cast<int64_t>(j.version()));
      }
      // Trials, the many rows: one multi-row statement per chunk instead of a round trip to
      // the server per row (the writer compacts a batch to one record per key).
      // One statement may not touch a row twice: of records with the same key, the newest.
      const std::vector<size_t> newest = b.NewestTrials();
      constexpr size_t kRowsPerStatement = 500;
      std::vector<std::string> rows;
      for (size_t k = 0; k < newest.size(); ++k) {
        const v1::Trial& t = b.trials[newest[k]];
        const std::string pb = ToBinaryBody(t);
        rows.push_back(
            absl::StrCat("(", w.quote(t.job_id()), ", ", t.id(), ", ", static_cast<int>(t.state()),
                         ", ", w.quote(t.arch_hash()), ", '', ",
                         w.quote_raw(reinterpret_cast<const unsigned char*>(pb.data()), pb.size()),
                         ", ", static_cast<int64_t>(t.version()), ")"));
        if (rows.size() == kRowsPerStatement || k + 1 == newest.size()) {
          w.exec(UpsertRowsSql(StoreTable::kTrials, rows));
          rows.clear();
        }
      }
      for (const auto& wk : b.workers) {
        w.exec_prepared("upsert_worker", wk.id(), ToJsonBody(wk),
                        static_cast<int64_t>(wk.version()));
      }
      for (const auto& m : b.latencies) {
        w.exec_prepared("upsert_latency", m.arch_hash(), m.profile(), LatencySetting(m),
                        ToJsonBody(m), int64_t{1});
      }
      for (const std::string& id : b.deleted_jobs) {
        w.exec_params("DELETE FROM trials WHERE job_id = $1", id);
        w.exec_params("DELETE FROM jobs WHERE id = $1", id);
      }
      w.commit();
      return absl::OkStatus();
    });
  }

  absl::StatusOr<std::vector<v1::Job>> LoadJobs() override {
    return LoadAll<v1::Job>("SELECT body FROM jobs ORDER BY create_time_ms, id", nullptr);
  }
  absl::StatusOr<std::vector<v1::Trial>> LoadTrials(absl::string_view job_id) override {
    std::string id(job_id);
    return LoadAll<v1::Trial>("SELECT body, pb FROM trials WHERE job_id = $1 ORDER BY trial_id",
                              &id);
  }
  absl::StatusOr<std::vector<v1::Worker>> LoadWorkers() override {
    return LoadAll<v1::Worker>("SELECT body FROM workers ORDER BY id", nullptr);
  }
  absl::StatusOr<std::vector<v1::LatencyMeasurement>> LoadLatencies() override {
    return LoadAll<v1::LatencyMeasurement>("SELECT body FROM latencies", nullptr);
  }
  absl::Status Ping() override {
    absl::MutexLock l(&mu_);
    return Guard("ping", [&]() -> absl::Status {
      mu_.AssertHeld();  // Guard runs it under mu_
      Connect();
      pqxx::nontransaction n(*conn_);
      n.exec("SELECT 1");
      return absl::OkStatus();
    });
  }
  absl::StatusOr<int> SchemaVersion() override {
    absl::MutexLock l(&mu_);
    int version = 0;
    NF_RETURN_IF_ERROR(Guard("schema version", [&]() -> absl::Status {
      mu_.AssertHeld();  // Guard runs it under mu_
      Connect();
      pqxx::nontransaction n(*conn_);
      version = n.exec("SELECT COALESCE(MAX(version), 0) FROM schema_migrations")[0][0].as<int>();
      return absl::OkStatus();
    }));
    return version;
  }
  std::string Backend() const override { return "postgresql"; }
  int64_t Reconnects() const override { return reconnects_.load(std::memory_order_relaxed); }

 private:
  // (Re)connects when there is no open connection, takes the owner lock, and prepares the
  // statements. Throws NotOwner when another controller holds the lock.
  void Connect() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (lost_) throw NotOwner(lost_reason_);
    if (conn_ && conn_->is_open()) return;
    conn_.reset();
    auto c = std::make_unique<pqxx::connection>(url_);
    {
      pqxx::nontransaction n(*c);
      n.exec("SET statement_timeout = 15000");
      // Acknowledged means durable: our commits wait for the WAL flush whatever the server's
      // default (a server-wide synchronous_commit=off would otherwise lose acknowledged writes).
      n.exec("SET synchronous_commit = on");
      if (!TryOwnerLock(n)) {
        // A session of our own from before a network cut may still hold it: end it and retry.
        pqxx::result mine = n.exec(absl::StrCat(
            "SELECT pg_terminate_backend(a.pid) FROM pg_locks l JOIN pg_stat_activity a "
            "USING (pid) WHERE l.locktype = 'advisory' AND l.classid = ",
            kLockClass, " AND l.objid = ", kOwnerLock,
            " AND l.granted AND a.application_name = ", n.quote(app_)));
        bool got = false;
        if (!mine.empty()) {
          Log(LogLevel::kWarn, "store_stale_session_ended",
              {{"sessions", mine.size()},
               {"reason",
                "a session of this controller from before a network cut held the "
                "owner lock"}});
        }
        for (int i = 0; i < 50 && !mine.empty() && !got; ++i) {
          got = TryOwnerLock(n);
          if (!got) absl::SleepFor(absl::Milliseconds(20));
        }
        if (!got) {
          std::string owner = Owner(n);
          if (had_lock_) {
            lost_ = true;
            lost_reason_ = absl::StrCat(
                "lost ownership of the store: another controller (", owner,
                ") took it while this one was disconnected; this controller must stop");
            Log(LogLevel::kError, "store_ownership_lost", {{"owner", owner}});
            throw NotOwner(lost_reason_);
          }
          throw NotOwner(absl::StrCat("the store is owned by another controller (", owner,
                                      "); stop it first, or start this one with --standby to "
                                      "take over when it dies"));
        }
      }
    }
    if (had_lock_) reconnects_.fetch_add(1, std::memory_order_relaxed);
    had_lock_ = true;
    conn_ = std::move(c);
    if (prepared_) Prepare();
  }

  bool TryOwnerLock(pqxx::nontransaction& n) {
    return n
        .exec(absl::StrCat("SELECT pg_try_advisory_lock(", kLockClass, ", ", kOwnerLock, ")"))[0][0]
        .as<bool>();
  }

  std::string Owner(pqxx::nontransaction& n) {
    pqxx::result r = n.exec(absl::StrCat(
        "SELECT a.pid, COALESCE(host(a.client_addr), 'local socket'), a.application_name, "
        "a.backend_start FROM pg_locks l JOIN pg_stat_activity a USING (pid) WHERE "
        "l.locktype = 'advisory' AND l.classid = ",
        kLockClass, " AND l.objid = ", kOwnerLock, " AND l.granted"));
    if (r.empty()) return "owner unknown";
    return absl::StrCat(r[0][2].c_str(), " from ", r[0][1].c_str(), ", server pid ",
                        r[0][0].c_str(), ", connected since ", r[0][3].c_str());
  }

  void Prepare() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    auto param = [](int i) { return absl::StrCat("$", i); };
    conn_->prepare("upsert_job", UpsertSql(StoreTable::kJobs, param));
    conn_->prepare("upsert_worker", UpsertSql(StoreTable::kWorkers, param));
    conn_->prepare("upsert_latency", UpsertSql(StoreTable::kLatencies, param));
    prepared_ = true;
  }

  // Runs `fn`, turning libpqxx exceptions into Status. A broken connection is dropped so the
  // next call reconnects.
  template <typename Fn>
  absl::Status Guard(absl::string_view what, Fn&& fn) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    try {
      return fn();
    } catch (const NotOwner& e) {
      conn_.reset();
      if (lost_) return absl::AbortedError(absl::StrCat("postgresql ", what, ": ", e.what()));
      return absl::FailedPreconditionError(absl::StrCat("postgresql ", what, ": ", e.what()));
    } catch (const pqxx::broken_connection& e) {
      conn_.reset();
      return absl::UnavailableError(
          absl::StrCat("postgresql ", what, ": connection failed: ", e.what(),
                       " (check that the server runs and the store URL is right)"));
    } catch (const pqxx::in_doubt_error& e) {
      conn_.reset();
      return absl::UnavailableError(absl::StrCat(
          "postgresql ", what, ": connection lost during commit (outcome unknown): ", e.what()));
    } catch (const pqxx::sql_error& e) {
      // A server restart or a timeout shows up as an SQL error on a dead session: reconnect.
      if (!conn_ || !conn_->is_open() || absl::StrContains(e.what(), "terminating connection") ||
          absl::StrContains(e.what(), "statement timeout")) {
        conn_.reset();
        return absl::UnavailableError(absl::StrCat("postgresql ", what, ": ", e.what()));
      }
      return absl::InternalError(
          absl::StrCat("postgresql ", what, ": ", e.what(), " (query: ", e.query(), ")"));
    } catch (const std::exception& e) {
      conn_.reset();
      return absl::UnavailableError(absl::StrCat("postgresql ", what, ": ", e.what()));
    }
  }

  template <typename T>
  absl::StatusOr<std::vector<T>> LoadAll(const char* sql, const std::string* arg) {
    absl::MutexLock l(&mu_);
    std::vector<T> out;
    NF_RETURN_IF_ERROR(Guard("load", [&]() -> absl::Status {
      mu_.AssertHeld();  // Guard runs it under mu_
      Connect();
      pqxx::nontransaction n(*conn_);
      pqxx::result r = arg ? n.exec_params(sql, *arg) : n.exec(sql);
      out.reserve(r.size());
      for (const auto& row : r) {
        T rec;
        const bool has_pb = row.size() > 1 && !row[1].is_null();
        if (has_pb) {
          pqxx::binarystring pb(row[1]);  // bytea arrives hex-escaped in text results
          NF_RETURN_IF_ERROR(FromStoredBody("", pb.data(), pb.size(), true, &rec));
        } else {
          NF_RETURN_IF_ERROR(FromStoredBody(row[0].c_str(), nullptr, 0, false, &rec));
        }
        out.push_back(std::move(rec));
      }
      return absl::OkStatus();
    }));
    return out;
  }

  const StoreOptions options_;
  const std::string app_;  // application_name: identifies this store's sessions
  const std::string url_;
  absl::Mutex mu_;
  std::unique_ptr<pqxx::connection> conn_ ABSL_GUARDED_BY(mu_);
  bool prepared_ ABSL_GUARDED_BY(mu_) = false;
  std::atomic<int64_t> reconnects_{0};
  bool had_lock_ ABSL_GUARDED_BY(mu_) = false;
  bool lost_ ABSL_GUARDED_BY(mu_) = false;
  std::string lost_reason_ ABSL_GUARDED_BY(mu_);
};

}  // namespace

absl::StatusOr<std::unique_ptr<Store>> OpenPostgresStore(absl::string_view url,
                                                         const StoreOptions& options) {
  auto store = std::make_unique<PostgresStore>(std::string(url), options);
  NF_RETURN_IF_ERROR(store->Init());
  return std::unique_ptr<Store>(std::move(store));
}

}  // namespace nasforge
