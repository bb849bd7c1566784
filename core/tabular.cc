#include "core/tabular.h"

#include "absl/strings/str_cat.h"
#include "core/search_space.h"
#include "core/status.h"

namespace nasforge {

absl::StatusOr<TabularOracle> TabularOracle::Load(const TabularOptions& o) {
  if (o.fitness_column.empty()) return FieldError("--fitness-column", "is required");
  NF_ASSIGN_OR_RETURN(Table t, Table::ReadCsv(o.table));
  TabularOracle out;
  out.o_ = o;
  NF_ASSIGN_OR_RETURN(int key, t.Column(o.key_column, "--key-column"));
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
    const std::string& k = t.Cell(r, key);
    if (!out.index_.emplace(k, r).second) {
      return absl::InvalidArgumentError(
          absl::StrCat(o.table, ": key '", k, "' appears twice (column ", o.key_column, ")"));
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
  const std::string key = TableKey(arch);
  if (key.empty()) {
    return absl::InvalidArgumentError(
        "the tabular backend answers NAS-Bench-201 cells (search_space.nb201) only: a kind "
        "with benchmark tables");
  }
  return FindKey(key);
}

double TabularOracle::SampleFitness(size_t row, std::mt19937_64& rng) const {
  if (seeds_.empty()) return fitness_[row];
  const auto& s = seeds_[row];
  return s[std::uniform_int_distribution<size_t>(0, s.size() - 1)(rng)];
}

}  // namespace nasforge
