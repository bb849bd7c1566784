#include "core/tabular.h"

#include <algorithm>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/parameters.h"
#include "core/search_space.h"
#include "core/status.h"

namespace nasforge {
namespace {

// A value as the key holds it: numbers in their shortest round-trip form ("1e-08" and "1.0e-8"
// alike), text as is.
std::string KeyText(const std::string& cell) {
  double x;
  return absl::SimpleAtod(cell, &x) ? FormatNumber(x) : cell;
}

constexpr char kSep = '\x1f';

}  // namespace

absl::StatusOr<TabularOracle> TabularOracle::Load(const TabularOptions& o) {
  if (o.fitness_column.empty()) return FieldError("--fitness-column", "is required");
  NF_ASSIGN_OR_RETURN(Table t, Table::ReadCsv(o.table));
  TabularOracle out;
  out.o_ = o;
  int key = -1;
  if (!o.key_column.empty()) {
    NF_ASSIGN_OR_RETURN(key, t.Column(o.key_column, "--key-column"));
  }
  out.param_columns_ = o.param_columns;
  if (out.param_columns_.empty() && key < 0) {
    for (const auto& c : t.columns()) {
      if (c == o.fitness_column || c == o.seeds_column ||
          std::find(o.report_columns.begin(), o.report_columns.end(), c) !=
              o.report_columns.end()) {
        continue;
      }
      out.param_columns_.push_back(c);
    }
  }
  std::sort(out.param_columns_.begin(), out.param_columns_.end());
  std::vector<int> params;
  for (const auto& c : out.param_columns_) {
    NF_ASSIGN_OR_RETURN(int col, t.Column(c, "--param-columns"));
    params.push_back(col);
  }
  if (key < 0 && params.empty()) {
    return FieldError("--key-column", "the table needs a key column or parameter columns");
  }
  out.param_cells_.resize(params.size());
  NF_ASSIGN_OR_RETURN(int fit, t.Column(o.fitness_column, "--fitness-column"));
  int seeds = -1;
  if (!o.seeds_column.empty()) {
    NF_ASSIGN_OR_RETURN(seeds, t.Column(o.seeds_column, "--seeds-column"));
  }
  std::vector<int> reports;
  for (const auto& c : o.report_columns) {
    NF_ASSIGN_OR_RETURN(int r, t.Column(c, "--report-columns"));
    reports.push_back(r);
  }
  out.reports_.resize(reports.size());
  for (size_t r = 0; r < t.rows(); ++r) {
    std::string k = key >= 0 ? t.Cell(r, key) : "";
    for (size_t i = 0; i < params.size(); ++i) {
      absl::StrAppend(&k, std::string(1, kSep), KeyText(t.Cell(r, params[i])));
      out.param_cells_[i].push_back(t.Cell(r, params[i]));
    }
    if (!out.index_.emplace(k, r).second) {
      return absl::InvalidArgumentError(absl::StrCat(
          o.table, ": row ", r + 2, " repeats the key of row ", out.index_[k] + 2, " (columns ",
          absl::StrJoin(
              params.empty() ? std::vector<std::string>{o.key_column} : out.param_columns_, ", "),
          ")"));
    }
    out.keys_.push_back(k);
    NF_ASSIGN_OR_RETURN(double f, t.Number(r, fit));
    out.fitness_.push_back(f);
    if (seeds >= 0) {
      NF_ASSIGN_OR_RETURN(auto s, t.Numbers(r, seeds));
      if (s.empty()) s.push_back(f);
      out.seeds_.push_back(std::move(s));
    }
    for (size_t i = 0; i < reports.size(); ++i) {
      NF_ASSIGN_OR_RETURN(double v, t.Number(r, reports[i]));
      out.reports_[i].push_back(v);
    }
  }
  if (out.keys_.empty()) return absl::InvalidArgumentError(o.table + ": the table has no rows");
  return out;
}

absl::StatusOr<size_t> TabularOracle::FindKey(const std::string& key) const {
  auto it = index_.find(key);
  if (it == index_.end()) {
    return absl::NotFoundError(
        absl::StrCat("'", key, "' is not in ", o_.table, " (column ", o_.key_column, ")"));
  }
  return it->second;
}

absl::StatusOr<size_t> TabularOracle::Find(const v1::Architecture& arch) const {
  std::string key;
  if (!o_.key_column.empty()) {
    key = TableKey(arch);
    if (key.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "this table keys rows by ", o_.key_column,
          ", an architecture of a kind with benchmark tables (search_space.nb201); a table of "
          "parameters is loaded with --key-column '' (rows keyed by their parameter columns)"));
    }
  }
  for (const auto& c : param_columns_) {
    const v1::ParamValue* v = FindParam(arch, c);
    if (v == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat("the table keys rows by the parameters ",
                       absl::StrJoin(param_columns_, ", "), ": the candidate has no value for '", c,
                       "' (declare it in search_space.parameters, with the table's values)"));
    }
    absl::StrAppend(&key, std::string(1, kSep), KeyText(ParamText(*v)));
  }
  auto it = index_.find(key);
  if (it == index_.end()) {
    return absl::NotFoundError(
        absl::StrCat("the candidate (", ArchSummary(arch), ") is not a row of ", o_.table));
  }
  return it->second;
}

double TabularOracle::SampleFitness(size_t row, std::mt19937_64& rng) const {
  if (seeds_.empty()) return fitness_[row];
  const auto& s = seeds_[row];
  return s[std::uniform_int_distribution<size_t>(0, s.size() - 1)(rng)];
}

}  // namespace nasforge
