// The Pareto database: a narrow interface with one implementation per backend (SQLite, the
// embedded default; PostgreSQL, for the service), chosen by URL in OpenStore().
//
// Rows are keyed columns plus the full record: jobs and workers as protobuf JSON (`body`, readable
// and queryable by psql/sqlite3), trials -- millions of rows -- as binary protobuf (`pb`, schema
// 3; `nasforge candidates --json` prints them). The schema stays small. Writes go in batches, one
// transaction per batch, so callers can group-commit (see StoreWriter).
//
// Guarantees every backend gives (tests/controller/store_conformance_test.cc):
// - Versioned compare-and-set: a row is written only if the record's `version` is greater than
//   the stored one, so an older snapshot arriving late can never undo a newer one.
// - Durable on return: Write() returns OK only after the transaction is on stable storage
//   (SQLite synchronous=FULL; PostgreSQL synchronous_commit as the server has it, never
//   turned off by us).
// - One owner: a Store holds exclusive ownership of its database for its lifetime (SQLite: an
//   flock on PATH-lock; PostgreSQL: a session advisory lock). A second owner is refused, or with
//   StoreOptions::standby waits until the owner is gone. A PostgreSQL store that loses the lock
//   (its session died and another controller took over) fails every later call with ABORTED.
// - Schema: an older database is migrated; one newer than this binary is refused.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "core/registry.h"
#include "nasforge/v1/nasforge.pb.h"

namespace nasforge {

// Records written in one transaction: upserts by primary key.
struct WriteBatch {
  std::vector<v1::Job> jobs;
  std::vector<v1::Trial> trials;
  std::vector<v1::Worker> workers;
  // Latency cache entries: inserted once per key (arch_hash, profile, batch_size, threads,
  // precision); a second measurement of the same key keeps the first (no version: measurements
  // of one key are interchangeable).
  std::vector<v1::LatencyMeasurement> latencies;
  // Jobs deleted with their trials, applied after the upserts of the same batch (a deleted job
  // is never written again: the manager forgets it in the same step).
  std::vector<std::string> deleted_jobs;
  bool empty() const {
    return jobs.empty() && trials.empty() && workers.empty() && latencies.empty() &&
           deleted_jobs.empty();
  }
  size_t size() const {
    return jobs.size() + trials.size() + workers.size() + latencies.size() + deleted_jobs.size();
  }
  void Append(WriteBatch&& other);
  // Keeps one record per key, the one with the highest version (what CAS would keep anyway).
  void Compact();
  // Compact()'s choice for `trials` without moving them: the indices kept, in order.
  std::vector<size_t> NewestTrials() const;
};

struct StoreOptions {
  // When another controller owns the store: false (default) refuses at once with
  // FAILED_PRECONDITION naming the owner; true waits (a hot standby) until it is gone.
  bool standby = false;
  absl::Duration standby_poll = absl::Seconds(1);
};

// Thread-compatible implementations are made thread-safe with an internal mutex: any thread may
// call any method.
class Store {
 public:
  virtual ~Store() = default;

  // Writes all records of `batch` atomically (all or nothing).
  virtual absl::Status Write(const WriteBatch& batch) = 0;
  virtual absl::StatusOr<std::vector<v1::Job>> LoadJobs() = 0;
  virtual absl::StatusOr<std::vector<v1::Trial>> LoadTrials(absl::string_view job_id) = 0;
  virtual absl::StatusOr<std::vector<v1::Worker>> LoadWorkers() = 0;
  // The latency cache (schema 5): every measurement ever recorded, one per key.
  virtual absl::StatusOr<std::vector<v1::LatencyMeasurement>> LoadLatencies() {
    return std::vector<v1::LatencyMeasurement>{};
  }
  // Health check: a trivial query round trip (SELECT 1).
  virtual absl::Status Ping() = 0;
  // Highest applied schema migration.
  virtual absl::StatusOr<int> SchemaVersion() = 0;
  // "sqlite" or "postgresql".
  virtual std::string Backend() const = 0;
  // Connections re-opened after an error so far (0 for an embedded store).
  virtual int64_t Reconnects() const { return 0; }
};

// Opens (and migrates to the latest schema) the store at `url`:
//   sqlite:///abs/path.db, sqlite://relative.db, sqlite://:memory:
//   postgresql://user:pass@host:port/db?sslmode=disable (any libpq URI; also postgres://)
absl::StatusOr<std::unique_ptr<Store>> OpenStore(absl::string_view url,
                                                 const StoreOptions& options = {});

// The migrations both backends apply, in order; index + 1 is the schema version.
const std::vector<std::string>& SchemaMigrations();
// FAILED_PRECONDITION when a database at schema `version` was written by a newer binary.
absl::Status CheckSchemaNotNewer(int version);

// Store backends by URL scheme ("sqlite", "postgresql", "postgres"): the one place a backend is
// registered (built-ins in store_backends.cc, one line each; each backend is a library of its
// own). OpenStore() reads this table; tests and embedders may Add() more.
struct StoreBackend {
  std::string name;     // the URL scheme, before "://"
  std::string summary;  // "sqlite:///path.db: embedded, one machine"
  std::function<absl::StatusOr<std::unique_ptr<Store>>(absl::string_view url,
                                                       const StoreOptions& options)>
      open;  // gets the whole URL
};
using StoreBackendRegistry = NameRegistry<StoreBackend>;
StoreBackendRegistry& StoreBackends();

// The versioned compare-and-set upsert of one table, in SQL both backends speak; `placeholder`
// spells parameter i (1-based): "?1" for SQLite, "$1" for PostgreSQL. Parameters, in order:
//   jobs:    id, idempotency_key, state, create_time_ms, body, version
//   trials:  job_id, trial_id, state, arch_hash, body, pb, version
//   workers: id, body, version
//   latencies: arch_hash, profile, setting (LatencySetting), body, version
// A row is replaced only by a higher version (state only moves forward; latencies are written
// with version 1, so the first measurement of a key stays).
enum class StoreTable { kJobs, kTrials, kWorkers, kLatencies };
std::string UpsertSql(StoreTable table, const std::function<std::string(int)>& placeholder);
// The same upsert for several rows in one statement; each row is "(v1, v2, ...)", values quoted
// by the caller in the column order above. Keys must be distinct (WriteBatch::Compact).
std::string UpsertRowsSql(StoreTable table, const std::vector<std::string>& rows);

// Record <-> JSON body helpers shared by the backends.
std::string ToJsonBody(const google::protobuf::Message& m);
absl::Status FromJsonBody(absl::string_view json, google::protobuf::Message* m);
// Trials: binary protobuf for the `pb` column.
std::string ToBinaryBody(const google::protobuf::Message& m);
// A stored record: from `pb` when the row has one (has_pb), else from its JSON `body` (rows
// written before schema 3). DATA_LOSS when neither parses.
absl::Status FromStoredBody(absl::string_view json, const void* pb, size_t pb_size, bool has_pb,
                            google::protobuf::Message* m);

}  // namespace nasforge
