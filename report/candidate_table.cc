#include "report/candidate_table.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/search_space.h"
#include "core/trial_state.h"

namespace nasforge::report {
namespace {

std::string CsvField(const std::string& s) {
  if (s.find_first_of(",\"\n\r") == std::string::npos) return s;
  std::string out = "\"";
  for (char c : s) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

}  // namespace

std::vector<std::string> CandidateColumns(const v1::JobSpec& spec) {
  std::vector<std::string> cols = {"trial", "state"};
  auto add = [&](const std::string& c) {
    if (std::find(cols.begin(), cols.end(), c) == cols.end()) cols.push_back(c);
  };
  // Compressed variants: which trial each was made from and by which recipe ("int8 of 3").
  const bool variants = spec.compression().recipes_size() > 0;
  if (variants) add("variant");
  for (const auto& o : spec.objectives()) add(o.metric());
  for (const auto& c : spec.constraints()) add(c.metric());
  add("macs");
  add("params");
  if (variants) {
    add("size_bytes");
    add("parent_accuracy");  // the parent as loaded, on the same split
  }
  if (spec.hardware_targets().empty()) add("latency_ms");
  for (const auto& t : spec.hardware_targets()) add(absl::StrCat("latency_ms@", t.name()));
  for (const char* c : {"train_seconds", "epochs", "worker_id", "arch", "arch_hash"}) add(c);
  return cols;
}

std::string CandidateCell(const v1::Trial& t, const std::string& column) {
  if (column == "trial") return absl::StrCat(t.id());
  if (column == "state") return TrialStateLabel(t.state());
  if (column == "worker_id") return t.worker_id();
  if (column == "arch") return ArchSummary(t.architecture());
  if (column == "arch_hash") return t.arch_hash();
  if (column == "variant") {
    return t.has_variant() ? absl::StrCat(t.variant().recipe().name(), " of ", t.variant().of())
                           : "";
  }
  auto it = t.metrics().find(column);
  return it == t.metrics().end() ? "" : absl::StrFormat("%.10g", it->second);
}

std::string CsvHeader(const std::vector<std::string>& columns) {
  std::string out;
  for (size_t i = 0; i < columns.size(); ++i) {
    absl::StrAppend(&out, i ? "," : "", CsvField(columns[i]));
  }
  return out + "\n";
}

std::string CsvLine(const v1::Trial& t, const std::vector<std::string>& columns) {
  std::string out;
  for (size_t i = 0; i < columns.size(); ++i) {
    absl::StrAppend(&out, i ? "," : "", CsvField(CandidateCell(t, columns[i])));
  }
  return out + "\n";
}

std::string CandidatesCsv(const google::protobuf::RepeatedPtrField<v1::Trial>& trials,
                          const std::vector<std::string>& columns) {
  std::string out = CsvHeader(columns);
  for (const auto& t : trials) out += CsvLine(t, columns);
  return out;
}

std::string CandidatesTable(const google::protobuf::RepeatedPtrField<v1::Trial>& trials,
                            const std::vector<std::string>& columns) {
  std::vector<std::vector<std::string>> rows;
  rows.push_back(columns);
  for (const auto& t : trials) {
    std::vector<std::string> row;
    for (const auto& c : columns) {
      std::string v = CandidateCell(t, c);
      row.push_back(v.empty() ? "-" : v);
    }
    rows.push_back(std::move(row));
  }
  std::vector<size_t> width(columns.size(), 0);
  for (const auto& r : rows) {
    for (size_t i = 0; i < r.size(); ++i) width[i] = std::max(width[i], r[i].size());
  }
  std::string out;
  for (const auto& r : rows) {
    std::string line;
    for (size_t i = 0; i < r.size(); ++i) {
      if (i + 1 == r.size()) {
        line += r[i];
      } else {
        absl::StrAppend(&line, r[i], std::string(width[i] - r[i].size() + 2, ' '));
      }
    }
    out += line + "\n";
  }
  return out;
}

}  // namespace nasforge::report
