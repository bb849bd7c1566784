// PostgreSQL backend (libpqxx 6.4). pqxx exceptions are caught here and become Status values.
#include <pqxx/pqxx>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "controller/store.h"
#include "core/log.h"
#include "core/status.h"
#include "google/protobuf/util/time_util.h"

namespace nasforge {
namespace {

// Arbitrary constant: serialises concurrent migrations of controllers sharing one database.
constexpr int64_t kMigrationLockKey = 0x6e6173666f726765;  // "nasforge"

class PostgresStore final : public Store {
 public:
  explicit PostgresStore(std::string url) : url_(std::move(url)) {}

  absl::Status Init() {
    absl::MutexLock l(&mu_);
    return Guard("migrate", [&]() -> absl::Status {
      Connect();
      pqxx::work w(*conn_);
      w.exec(absl::StrCat("SELECT pg_advisory_xact_lock(", kMigrationLockKey, ")"));
      w.exec(
          "CREATE TABLE IF NOT EXISTS schema_migrations ("
          "version INTEGER PRIMARY KEY, applied_at_ms BIGINT NOT NULL)");
      int version =
          w.exec("SELECT COALESCE(MAX(version), 0) FROM schema_migrations")[0][0].as<int>();
      const auto& m = SchemaMigrations();
      for (int v = version + 1; v <= static_cast<int>(m.size()); ++v) {
        w.exec(m[v - 1]);
        w.exec(absl::StrCat("INSERT INTO schema_migrations VALUES (", v, ", ",
                            absl::ToUnixMillis(absl::Now()), ")"));
      }
      w.commit();
      return absl::OkStatus();
    });
  }

  absl::Status Write(const WriteBatch& b) override {
    absl::MutexLock l(&mu_);
    return Guard("write", [&]() -> absl::Status {
      Connect();
      pqxx::work w(*conn_);
      for (const auto& j : b.jobs) {
        w.exec_prepared("upsert_job", j.id(), j.idempotency_key(), static_cast<int>(j.state()),
                        google::protobuf::util::TimeUtil::TimestampToMilliseconds(j.create_time()),
                        ToJsonBody(j));
      }
      for (const auto& t : b.trials) {
        w.exec_prepared("upsert_trial", t.job_id(), t.id(), static_cast<int>(t.state()),
                        t.arch_hash(), ToJsonBody(t));
      }
      for (const auto& wk : b.workers) {
        w.exec_prepared("upsert_worker", wk.id(), ToJsonBody(wk));
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
    return LoadAll<v1::Trial>("SELECT body FROM trials WHERE job_id = $1 ORDER BY trial_id", &id);
  }
  absl::StatusOr<std::vector<v1::Worker>> LoadWorkers() override {
    return LoadAll<v1::Worker>("SELECT body FROM workers ORDER BY id", nullptr);
  }
  absl::Status Ping() override {
    absl::MutexLock l(&mu_);
    return Guard("ping", [&]() -> absl::Status {
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
      Connect();
      pqxx::nontransaction n(*conn_);
      version = n.exec("SELECT COALESCE(MAX(version), 0) FROM schema_migrations")[0][0].as<int>();
      return absl::OkStatus();
    }));
    return version;
  }
  std::string Backend() const override { return "postgresql"; }

 private:
  // (Re)connects when there is no open connection and prepares the statements.
  void Connect() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (conn_ && conn_->is_open()) return;
    conn_ = std::make_unique<pqxx::connection>(url_);
    conn_->prepare("upsert_job",
                   "INSERT INTO jobs (id, idempotency_key, state, create_time_ms, body) "
                   "VALUES ($1, $2, $3, $4, $5) ON CONFLICT (id) DO UPDATE SET "
                   "state = excluded.state, body = excluded.body");
    conn_->prepare("upsert_trial",
                   "INSERT INTO trials (job_id, trial_id, state, arch_hash, body) "
                   "VALUES ($1, $2, $3, $4, $5) ON CONFLICT (job_id, trial_id) DO UPDATE SET "
                   "state = excluded.state, arch_hash = excluded.arch_hash, body = excluded.body");
    conn_->prepare("upsert_worker",
                   "INSERT INTO workers (id, body) VALUES ($1, $2) "
                   "ON CONFLICT (id) DO UPDATE SET body = excluded.body");
  }

  // Runs `fn`, turning libpqxx exceptions into Status. A broken connection is dropped so the
  // next call reconnects.
  template <typename Fn>
  absl::Status Guard(absl::string_view what, Fn&& fn) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    try {
      return fn();
    } catch (const pqxx::broken_connection& e) {
      conn_.reset();
      return absl::UnavailableError(
          absl::StrCat("postgresql ", what, ": connection failed: ", e.what(),
                       " (check that the server runs and the store URL is right)"));
    } catch (const pqxx::sql_error& e) {
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
      Connect();
      pqxx::nontransaction n(*conn_);
      pqxx::result r = arg ? n.exec_params(sql, *arg) : n.exec(sql);
      out.reserve(r.size());
      for (const auto& row : r) {
        T rec;
        NF_RETURN_IF_ERROR(FromJsonBody(row[0].c_str(), &rec));
        out.push_back(std::move(rec));
      }
      return absl::OkStatus();
    }));
    return out;
  }

  const std::string url_;
  absl::Mutex mu_;
  std::unique_ptr<pqxx::connection> conn_ ABSL_GUARDED_BY(mu_);
};

}  // namespace

absl::StatusOr<std::unique_ptr<Store>> OpenPostgresStore(absl::string_view url) {
  auto store = std::make_unique<PostgresStore>(std::string(url));
  NF_RETURN_IF_ERROR(store->Init());
  return std::unique_ptr<Store>(std::move(store));
}

}  // namespace nasforge
