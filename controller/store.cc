#include "controller/store.h"

#include <google/protobuf/util/json_util.h>

#include <cstdint>
#include <map>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace nasforge {

void WriteBatch::Append(WriteBatch&& o) {
  for (auto& j : o.jobs) jobs.push_back(std::move(j));
  for (auto& t : o.trials) trials.push_back(std::move(t));
  for (auto& w : o.workers) workers.push_back(std::move(w));
  for (auto& m : o.latencies) latencies.push_back(std::move(m));
  for (auto& d : o.deleted_jobs) deleted_jobs.push_back(std::move(d));
}

namespace {
// Indices of the highest-version record per key, in first-seen order of the keys.
template <typename T, typename KeyFn>
std::vector<size_t> NewestIndices(const std::vector<T>& v, KeyFn key) {
  std::map<decltype(key(v[0])), size_t> slot;  // key -> position in `out`
  std::vector<size_t> out;
  out.reserve(v.size());
  for (size_t i = 0; i < v.size(); ++i) {
    auto [it, inserted] = slot.emplace(key(v[i]), out.size());
    if (inserted) {
      out.push_back(i);
    } else if (v[i].version() > v[out[it->second]].version()) {
      out[it->second] = i;
    }
  }
  return out;
}
// Keeps the highest-version record per key, in first-seen order of the keys.
template <typename T, typename KeyFn>
void KeepNewest(std::vector<T>& v, KeyFn key) {
  std::vector<T> out;
  for (size_t i : NewestIndices(v, key)) out.push_back(std::move(v[i]));
  v = std::move(out);
}
std::pair<std::string, int64_t> TrialKey(const v1::Trial& t) { return {t.job_id(), t.id()}; }
}  // namespace

std::vector<size_t> WriteBatch::NewestTrials() const {
  if (trials.empty()) return {};
  return NewestIndices(trials, TrialKey);
}

void WriteBatch::Compact() {
  if (!jobs.empty()) KeepNewest(jobs, [](const v1::Job& j) { return j.id(); });
  if (!trials.empty()) {
    KeepNewest(trials, TrialKey);
  }
  if (!workers.empty()) KeepNewest(workers, [](const v1::Worker& w) { return w.id(); });
}

const std::vector<std::string>& SchemaMigrations() {
  static const auto* kMigrations = new std::vector<std::string>{
      // 1: jobs, trials, workers.
      "CREATE TABLE jobs (id TEXT PRIMARY KEY, idempotency_key TEXT NOT NULL, "
      "state INTEGER NOT NULL, create_time_ms BIGINT NOT NULL, body TEXT NOT NULL);"
      "CREATE UNIQUE INDEX jobs_idempotency ON jobs (idempotency_key) WHERE idempotency_key <> '';"
      "CREATE TABLE trials (job_id TEXT NOT NULL, trial_id BIGINT NOT NULL, "
      "state INTEGER NOT NULL, arch_hash TEXT NOT NULL, body TEXT NOT NULL, "
      "PRIMARY KEY (job_id, trial_id));"
      "CREATE INDEX trials_job_state ON trials (job_id, state);"
      "CREATE INDEX trials_job_hash ON trials (job_id, arch_hash);"
      "CREATE TABLE workers (id TEXT PRIMARY KEY, body TEXT NOT NULL);",
      // 2: row versions for compare-and-set writes (rows of version 1 start at 0).
      "ALTER TABLE jobs ADD COLUMN version BIGINT NOT NULL DEFAULT 0;"
      "ALTER TABLE trials ADD COLUMN version BIGINT NOT NULL DEFAULT 0;"
      "ALTER TABLE workers ADD COLUMN version BIGINT NOT NULL DEFAULT 0;",
      // 3: trials as binary protobuf (`pb`; `body` then empty): a tenth of the bytes and of the
      // decode time of JSON, which dominated recovery. Older rows keep their JSON body and
      // stay readable; each is rewritten in binary at its next change.
      "ALTER TABLE trials ADD COLUMN pb BYTEA;",
      // 4: no index on (job_id, arch_hash): nothing reads by hash (duplicates are found in
      // memory), and keeping it meant a random index page written per trial -- at a million
      // trials, a third of each commit's pages.
      "DROP INDEX IF EXISTS trials_job_hash;",
      // 5: the latency cache: one measurement per (architecture, profile, batch, threads,
      // precision), shared by every job; `body` is the LatencyMeasurement as JSON.
      "CREATE TABLE latencies (arch_hash TEXT NOT NULL, profile TEXT NOT NULL, "
      "batch_size INTEGER NOT NULL, threads INTEGER NOT NULL, precision TEXT NOT NULL, "
      "body TEXT NOT NULL, version BIGINT NOT NULL, "
      "PRIMARY KEY (arch_hash, profile, batch_size, threads, precision));",
      // 6: the latency cache keyed by the setting as one string (LatencySetting: batch,
      // precision, runtime, threads, options), so that a new runtime or runtime option needs no
      // migration; rows of schema 5 were all LibTorch eager.
      "CREATE TABLE latencies6 (arch_hash TEXT NOT NULL, profile TEXT NOT NULL, "
      "setting TEXT NOT NULL, body TEXT NOT NULL, version BIGINT NOT NULL, "
      "PRIMARY KEY (arch_hash, profile, setting));"
      "INSERT INTO latencies6 SELECT arch_hash, profile, 'batch=' || batch_size || "
      "';precision=' || precision || ';runtime=libtorch;threads=' || threads, body, version "
      "FROM latencies;"
      "DROP TABLE latencies;"
      "ALTER TABLE latencies6 RENAME TO latencies;",
  };
  return *kMigrations;
}

std::string ToJsonBody(const google::protobuf::Message& m) {
  std::string out;
  google::protobuf::util::JsonPrintOptions o;
  o.preserve_proto_field_names = true;
  (void)google::protobuf::util::MessageToJsonString(m, &out, o);
  return out;
}

absl::Status FromJsonBody(absl::string_view json, google::protobuf::Message* m) {
  google::protobuf::util::JsonParseOptions o;
  o.ignore_unknown_fields = true;  // rows written by a newer version stay readable
  auto st = google::protobuf::util::JsonStringToMessage(
      google::protobuf::StringPiece(json.data(), json.size()), m, o);
  if (!st.ok()) {
    return absl::DataLossError(absl::StrCat("stored ", m->GetTypeName(),
                                            " body does not parse: ", st.message().as_string()));
  }
  return absl::OkStatus();
}

std::string ToBinaryBody(const google::protobuf::Message& m) { return m.SerializeAsString(); }

absl::Status FromStoredBody(absl::string_view json, const void* pb, size_t pb_size, bool has_pb,
                            google::protobuf::Message* m) {
  if (!has_pb) return FromJsonBody(json.empty() ? absl::string_view("{}") : json, m);
  if (!m->ParseFromArray(pb, static_cast<int>(pb_size))) {
    return absl::DataLossError(
        absl::StrCat("stored ", m->GetTypeName(), " record (binary, ", pb_size,
                     " bytes) does not parse; restore the database from a backup"));
  }
  return absl::OkStatus();
}

absl::Status CheckSchemaNotNewer(int version) {
  int known = static_cast<int>(SchemaMigrations().size());
  if (version <= known) return absl::OkStatus();
  return absl::FailedPreconditionError(absl::StrCat(
      "store: schema version ", version, " is newer than this binary knows (", known,
      "); a newer nasforge wrote it. Run that version, or restore a backup made for this one"));
}

namespace {
struct Shape {
  const char* name;
  std::vector<const char*> columns;  // in parameter order; version last
  const char* key;                   // the conflict target
  std::vector<const char*> updated;  // set from the new row (version too)
};
const Shape& ShapeOf(StoreTable table) {
  static const Shape kShapes[] = {
      {"jobs",
       {"id", "idempotency_key", "state", "create_time_ms", "body", "version"},
       "id",
       {"state", "body", "version"}},
      {"trials",
       {"job_id", "trial_id", "state", "arch_hash", "body", "pb", "version"},
       "job_id, trial_id",
       {"state", "arch_hash", "body", "pb", "version"}},
      {"workers", {"id", "body", "version"}, "id", {"body", "version"}},
      {"latencies",
       {"arch_hash", "profile", "setting", "body", "version"},
       "arch_hash, profile, setting",
       {"body", "version"}},
  };
  return kShapes[static_cast<int>(table)];
}
// "INSERT INTO t (columns) VALUES <values> ON CONFLICT (key) DO UPDATE ... WHERE newer".
std::string Upsert(const Shape& s, const std::string& values) {
  std::vector<std::string> sets;
  for (const char* c : s.updated) sets.push_back(absl::StrCat(c, " = excluded.", c));
  return absl::StrCat("INSERT INTO ", s.name, " (", absl::StrJoin(s.columns, ", "), ") VALUES ",
                      values, " ON CONFLICT (", s.key, ") DO UPDATE SET ",
                      absl::StrJoin(sets, ", "), " WHERE ", s.name, ".version < excluded.version");
}
}  // namespace

std::string UpsertSql(StoreTable table, const std::function<std::string(int)>& placeholder) {
  const Shape& s = ShapeOf(table);
  std::vector<std::string> params;
  for (size_t i = 0; i < s.columns.size(); ++i) params.push_back(placeholder(i + 1));
  return Upsert(s, absl::StrCat("(", absl::StrJoin(params, ", "), ")"));
}

std::string UpsertRowsSql(StoreTable table, const std::vector<std::string>& rows) {
  return Upsert(ShapeOf(table), absl::StrJoin(rows, ", "));
}

}  // namespace nasforge
