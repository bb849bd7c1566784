// A benchmark table in memory (CSV with a header row), read with libcsv. Columns are addressed
// by name, so nothing about one benchmark (NAS-Bench-201 CIFAR-10, ...) is hard-coded.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace nasforge {

class Table {
 public:
  // Errors name the file, the line and what is wrong (ragged rows, unreadable file, bad CSV).
  static absl::StatusOr<Table> ReadCsv(const std::string& path);

  size_t rows() const { return cells_.size(); }
  const std::vector<std::string>& columns() const { return columns_; }
  // Index of `name`, or NOT_FOUND listing the columns the table has. `flag` names the option
  // the name came from, for the error.
  absl::StatusOr<int> Column(absl::string_view name, absl::string_view flag) const;
  const std::string& Cell(size_t row, int column) const { return cells_[row][column]; }
  // The cell as a number; INVALID_ARGUMENT naming row and column otherwise.
  absl::StatusOr<double> Number(size_t row, int column) const;
  // A ';'-separated list of numbers (e.g. per-seed results).
  absl::StatusOr<std::vector<double>> Numbers(size_t row, int column) const;

 private:
  std::string path_;
  std::vector<std::string> columns_;
  std::vector<std::vector<std::string>> cells_;
};

}  // namespace nasforge
