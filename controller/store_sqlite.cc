// SQLite backend: one connection, WAL journal with synchronous=FULL (a committed transaction
// survives a power cut), a mutex around it, and an flock on PATH-lock held for the store's
// lifetime so that one controller at a time owns the database (released by the kernel when the
// process dies, kill -9 included).
#include "controller/store_sqlite.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <string>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "core/latency_runtimes.h"
#include "core/log.h"
#include "core/status.h"
#include "google/protobuf/util/time_util.h"

namespace nasforge {
namespace {

std::string Param(int i) { return absl::StrCat("?", i); }  // SQLite parameter i

class Stmt {
 public:
  Stmt(sqlite3* db, const char* sql) { rc_ = sqlite3_prepare_v2(db, sql, -1, &s_, nullptr); }
  ~Stmt() { sqlite3_finalize(s_); }
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;
  bool ok() const { return rc_ == SQLITE_OK; }
  sqlite3_stmt* get() { return s_; }
  void Text(int i, const std::string& v) {
    sqlite3_bind_text(s_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
  }
  void Int(int i, int64_t v) { sqlite3_bind_int64(s_, i, v); }
  void Blob(int i, const std::string& v) {
    sqlite3_bind_blob(s_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
  }

 private:
  sqlite3_stmt* s_ = nullptr;
  int rc_;
};

// Takes the exclusive owner lock of the database at `path`; returns the open fd (kept open for the
// store's lifetime) or FAILED_PRECONDITION naming the owner's pid.
absl::StatusOr<int> LockOwner(const std::string& path, const StoreOptions& options) {
  std::string lock = path + "-lock";
  int fd = ::open(lock.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) {
    return absl::UnavailableError(
        absl::StrCat("store: cannot open lock file '", lock, "': ", std::strerror(errno)));
  }
  bool waited = false;
  while (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    if (errno != EWOULDBLOCK) {
      int e = errno;
      ::close(fd);
      return absl::UnavailableError(
          absl::StrCat("store: cannot lock '", lock, "': ", std::strerror(e)));
    }
    char buf[64] = {0};
    ssize_t n = ::pread(fd, buf, sizeof(buf) - 1, 0);
    std::string owner = n > 0 ? std::string(buf, static_cast<size_t>(n)) : "unknown";
    while (!owner.empty() && (owner.back() == '\n' || owner.back() == ' ')) owner.pop_back();
    if (!options.standby) {
      ::close(fd);
      return absl::FailedPreconditionError(absl::StrCat(
          "store: sqlite://", path, " is owned by another controller (", owner, ", lock file ",
          lock, "); stop it first: one controller owns a store at a time"));
    }
    if (!waited) {
      Log(LogLevel::kInfo, "store_standby", {{"store", path}, {"owner", owner}});
      waited = true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(
        std::max<int64_t>(10, absl::ToInt64Milliseconds(options.standby_poll))));
  }
  std::string me = absl::StrCat("pid ", ::getpid(), "\n");
  if (::ftruncate(fd, 0) != 0 || ::pwrite(fd, me.data(), me.size(), 0) < 0) {
    // The lock is what matters; the pid is only for the message of a refused second owner.
  }
  return fd;
}

class SqliteStore final : public Store {
 public:
  SqliteStore(sqlite3* db, int lock_fd) : db_(db), lock_fd_(lock_fd) {}
  ~SqliteStore() override {
    sqlite3_close_v2(db_);
    if (lock_fd_ >= 0) ::close(lock_fd_);  // releases the owner lock
  }

  absl::Status Init() {
    absl::MutexLock l(&mu_);
    // FULL: every commit syncs the WAL, so an acknowledged write survives a power cut (NORMAL
    // may lose the last transactions).
    // cache_size: 64 MiB of pages (the default is 2 MiB): index pages of a million-trial job
    // stay in memory instead of being read back at every insert.
    NF_RETURN_IF_ERROR(
        Exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA cache_size=-65536;"));
    sqlite3_busy_timeout(db_, 10'000);
    NF_RETURN_IF_ERROR(
        Exec("CREATE TABLE IF NOT EXISTS schema_migrations ("
             "version INTEGER PRIMARY KEY, applied_at_ms BIGINT NOT NULL)"));
    NF_RETURN_IF_ERROR(Exec("BEGIN IMMEDIATE"));
    absl::Status st = [&]() -> absl::Status {
      mu_.AssertHeld();
      NF_ASSIGN_OR_RETURN(int version, SchemaVersionLocked());
      NF_RETURN_IF_ERROR(CheckSchemaNotNewer(version));
      const auto& m = SchemaMigrations();
      for (int v = version + 1; v <= static_cast<int>(m.size()); ++v) {
        NF_RETURN_IF_ERROR(Exec(m[v - 1].c_str()));
        NF_RETURN_IF_ERROR(Exec(absl::StrCat("INSERT INTO schema_migrations VALUES (", v, ", ",
                                             absl::ToUnixMillis(absl::Now()), ")")
                                    .c_str()));
      }
      return absl::OkStatus();
    }();
    if (!st.ok()) {
      (void)Exec("ROLLBACK");
      return absl::Status(st.code(), absl::StrCat("sqlite migration failed: ", st.message()));
    }
    return Exec("COMMIT");
  }

  absl::Status Write(const WriteBatch& batch) override {
    absl::MutexLock l(&mu_);
    NF_RETURN_IF_ERROR(Exec("BEGIN IMMEDIATE"));
    absl::Status st = WriteLocked(batch);
    if (st.ok()) st = Exec("COMMIT");
    // A failed COMMIT (disk full, I/O error) may leave the transaction open: end it, so the
    // next attempt starts clean and nothing of this one is applied.
    if (!st.ok() && !sqlite3_get_autocommit(db_)) (void)Exec("ROLLBACK");
    return st;
  }

  absl::StatusOr<std::vector<v1::Job>> LoadJobs() override {
    absl::MutexLock l(&mu_);
    return LoadAll<v1::Job>("SELECT body FROM jobs ORDER BY create_time_ms, id", "");
  }
  absl::StatusOr<std::vector<v1::Trial>> LoadTrials(absl::string_view job_id) override {
    absl::MutexLock l(&mu_);
    return LoadAll<v1::Trial>("SELECT body, pb FROM trials WHERE job_id = ?1 ORDER BY trial_id",
                              std::string(job_id));
  }
  absl::StatusOr<std::vector<v1::Worker>> LoadWorkers() override {
    absl::MutexLock l(&mu_);
    return LoadAll<v1::Worker>("SELECT body FROM workers ORDER BY id", "");
  }
  absl::StatusOr<std::vector<v1::LatencyMeasurement>> LoadLatencies() override {
    absl::MutexLock l(&mu_);
    return LoadAll<v1::LatencyMeasurement>("SELECT body FROM latencies", "");
  }
  absl::Status Ping() override {
    absl::MutexLock l(&mu_);
    return Exec("SELECT 1");
  }
  absl::StatusOr<int> SchemaVersion() override {
    absl::MutexLock l(&mu_);
    return SchemaVersionLocked();
  }
  std::string Backend() const override { return "sqlite"; }

 private:
  absl::Status Error(absl::string_view what) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return absl::UnavailableError(absl::StrCat("sqlite ", what, ": ", sqlite3_errmsg(db_)));
  }
  absl::Status Exec(const char* sql) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    char* err = nullptr;
    if (sqlite3_exec(db_, sql, nullptr, nullptr, &err) != SQLITE_OK) {
      std::string msg = err ? err : "unknown error";
      sqlite3_free(err);
      return absl::UnavailableError(absl::StrCat("sqlite: ", msg));
    }
    return absl::OkStatus();
  }
  absl::StatusOr<int> SchemaVersionLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    Stmt s(db_, "SELECT COALESCE(MAX(version), 0) FROM schema_migrations");
    if (!s.ok() || sqlite3_step(s.get()) != SQLITE_ROW) return Error("schema version");
    return sqlite3_column_int(s.get(), 0);
  }
  absl::Status Step(Stmt& s, absl::string_view what) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (sqlite3_step(s.get()) != SQLITE_DONE) return Error(what);
    sqlite3_reset(s.get());
    sqlite3_clear_bindings(s.get());
    return absl::OkStatus();
  }
  absl::Status WriteLocked(const WriteBatch& b) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (!b.jobs.empty()) {
      Stmt s(db_, UpsertSql(StoreTable::kJobs, Param).c_str());
      if (!s.ok()) return Error("prepare jobs upsert");
      for (const auto& j : b.jobs) {
        s.Text(1, j.id());
        s.Text(2, j.idempotency_key());
        s.Int(3, j.state());
        s.Int(4, google::protobuf::util::TimeUtil::TimestampToMilliseconds(j.create_time()));
        s.Text(5, ToJsonBody(j));
        s.Int(6, static_cast<int64_t>(j.version()));
        NF_RETURN_IF_ERROR(Step(s, absl::StrCat("upsert job ", j.id())));
      }
    }
    if (!b.trials.empty()) {
      Stmt s(db_, UpsertSql(StoreTable::kTrials, Param).c_str());
      if (!s.ok()) return Error("prepare trials upsert");
      for (const auto& t : b.trials) {
        s.Text(1, t.job_id());
        s.Int(2, t.id());
        s.Int(3, t.state());
        s.Text(4, t.arch_hash());
        s.Text(5, std::string());
        s.Blob(6, ToBinaryBody(t));
        s.Int(7, static_cast<int64_t>(t.version()));
        NF_RETURN_IF_ERROR(Step(s, absl::StrCat("upsert trial ", t.job_id(), "/", t.id())));
      }
    }
    if (!b.workers.empty()) {
      Stmt s(db_, UpsertSql(StoreTable::kWorkers, Param).c_str());
      if (!s.ok()) return Error("prepare workers upsert");
      for (const auto& w : b.workers) {
        s.Text(1, w.id());
        s.Text(2, ToJsonBody(w));
        s.Int(3, static_cast<int64_t>(w.version()));
        NF_RETURN_IF_ERROR(Step(s, absl::StrCat("upsert worker ", w.id())));
      }
    }
    if (!b.latencies.empty()) {
      Stmt s(db_, UpsertSql(StoreTable::kLatencies, Param).c_str());
      if (!s.ok()) return Error("prepare latencies insert");
      for (const auto& m : b.latencies) {
        s.Text(1, m.arch_hash());
        s.Text(2, m.profile());
        s.Text(3, LatencySetting(m));
        s.Text(4, ToJsonBody(m));
        s.Int(5, 1);
        NF_RETURN_IF_ERROR(Step(s, absl::StrCat("insert latency ", m.arch_hash())));
      }
    }
    for (const std::string& id : b.deleted_jobs) {
      Stmt t(db_, "DELETE FROM trials WHERE job_id = ?1");
      Stmt j(db_, "DELETE FROM jobs WHERE id = ?1");
      if (!t.ok() || !j.ok()) return Error("prepare job delete");
      t.Text(1, id);
      j.Text(1, id);
      NF_RETURN_IF_ERROR(Step(t, absl::StrCat("delete trials of job ", id)));
      NF_RETURN_IF_ERROR(Step(j, absl::StrCat("delete job ", id)));
    }
    return absl::OkStatus();
  }
  template <typename T>
  absl::StatusOr<std::vector<T>> LoadAll(const char* sql, const std::string& arg)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    Stmt s(db_, sql);
    if (!s.ok()) return Error("prepare load");
    if (!arg.empty()) s.Text(1, arg);
    std::vector<T> out;
    int rc;
    while ((rc = sqlite3_step(s.get())) == SQLITE_ROW) {
      const char* body = reinterpret_cast<const char*>(sqlite3_column_text(s.get(), 0));
      const bool has_pb =
          sqlite3_column_count(s.get()) > 1 && sqlite3_column_type(s.get(), 1) != SQLITE_NULL;
      const void* pb = has_pb ? sqlite3_column_blob(s.get(), 1) : nullptr;
      const size_t pb_size = has_pb ? static_cast<size_t>(sqlite3_column_bytes(s.get(), 1)) : 0;
      T rec;
      NF_RETURN_IF_ERROR(FromStoredBody(body ? body : "", pb, pb_size, has_pb, &rec));
      out.push_back(std::move(rec));
    }
    if (rc != SQLITE_DONE) return Error("load");
    return out;
  }

  absl::Mutex mu_;
  sqlite3* db_ ABSL_GUARDED_BY(mu_);
  const int lock_fd_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Store>> OpenSqliteStore(absl::string_view path,
                                                       const StoreOptions& options) {
  if (path.empty()) return absl::InvalidArgumentError("store: sqlite URL has no path");
  sqlite3* db = nullptr;
  std::string p(path);
  int lock_fd = -1;
  if (p != ":memory:") {
    // The directory must exist for the lock file; say so the way sqlite would.
    auto fd = LockOwner(p, options);
    if (!fd.ok()) {
      if (absl::IsUnavailable(fd.status())) {
        return absl::UnavailableError(
            absl::StrCat("store: cannot open sqlite database '", p, "': ", fd.status().message(),
                         " (check that the directory exists and is writable)"));
      }
      return fd.status();
    }
    lock_fd = *fd;
  }
  int rc = sqlite3_open_v2(
      p.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    std::string msg = db ? sqlite3_errmsg(db) : "out of memory";
    sqlite3_close_v2(db);
    if (lock_fd >= 0) ::close(lock_fd);
    return absl::UnavailableError(
        absl::StrCat("store: cannot open sqlite database '", p, "': ", msg,
                     " (check that the directory exists and is writable)"));
  }
  auto store = std::make_unique<SqliteStore>(db, lock_fd);
  NF_RETURN_IF_ERROR(store->Init());
  return std::unique_ptr<Store>(std::move(store));
}

}  // namespace nasforge
