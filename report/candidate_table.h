// `nasforge candidates --format table|csv`: columns that follow the job (its objectives and
// constraints first, then cost, the latency on each hardware target, training time and the
// architecture), as an aligned table or RFC 4180 CSV. Pure functions, unit-tested.
#pragma once

#include <string>
#include <vector>

#include "google/protobuf/repeated_ptr_field.h"
#include "nasforge/v1/nasforge.pb.h"

namespace nasforge::report {

// trial, state, the metrics the job's objectives and constraints name (in that order, each
// once), macs, params, latency_ms@TARGET for each hardware target (latency_ms when the job has
// none), train_seconds, epochs, worker_id, arch, arch_hash.
std::vector<std::string> CandidateColumns(const v1::JobSpec& spec);

// The cell of `column` for `t`: metrics with up to 10 significant digits; "" when missing.
std::string CandidateCell(const v1::Trial& t, const std::string& column);

// One CSV line (with its newline): the column names, or a trial's cells.
std::string CsvHeader(const std::vector<std::string>& columns);
std::string CsvLine(const v1::Trial& t, const std::vector<std::string>& columns);
// Header and one line per trial; fields quoted when they hold a comma, quote or newline.
std::string CandidatesCsv(const google::protobuf::RepeatedPtrField<v1::Trial>& trials,
                          const std::vector<std::string>& columns);
// Left-aligned columns as wide as their widest cell ("-" for a missing value).
std::string CandidatesTable(const google::protobuf::RepeatedPtrField<v1::Trial>& trials,
                            const std::vector<std::string>& columns);

}  // namespace nasforge::report
