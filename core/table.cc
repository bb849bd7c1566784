#include "core/table.h"

#include <csv.h>
#include <zlib.h>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace nasforge {
namespace {

struct Parse {
  std::vector<std::vector<std::string>> rows;
  std::vector<std::string> current;
};

void OnField(void* s, size_t len, void* data) {
  static_cast<Parse*>(data)->current.emplace_back(static_cast<const char*>(s), len);
}
void OnRow(int, void* data) {
  auto* p = static_cast<Parse*>(data);
  p->rows.push_back(std::move(p->current));
  p->current.clear();
}

}  // namespace

absl::StatusOr<Table> Table::ReadCsv(const std::string& path) {
  // zlib reads gzip-compressed files and passes plain ones through.
  gzFile f = gzopen(path.c_str(), "rb");
  if (f == nullptr) return absl::NotFoundError(absl::StrCat("table '", path, "': cannot open"));
  csv_parser parser;
  if (csv_init(&parser, CSV_STRICT | CSV_STRICT_FINI) != 0) {
    gzclose(f);
    return absl::InternalError("libcsv: cannot initialise the parser");
  }
  Parse p;
  char buf[1 << 16];
  for (;;) {
    const int n = gzread(f, buf, sizeof buf);
    if (n < 0) {
      int code = 0;
      std::string err = gzerror(f, &code);
      csv_free(&parser);
      gzclose(f);
      return absl::InvalidArgumentError(absl::StrCat("table '", path, "': ", err));
    }
    if (n == 0) break;
    if (csv_parse(&parser, buf, static_cast<size_t>(n), OnField, OnRow, &p) !=
        static_cast<size_t>(n)) {
      std::string err = csv_strerror(csv_error(&parser));
      csv_free(&parser);
      gzclose(f);
      return absl::InvalidArgumentError(
          absl::StrCat("table '", path, "': CSV error near row ", p.rows.size() + 1, ": ", err));
    }
  }
  gzclose(f);
  if (csv_fini(&parser, OnField, OnRow, &p) != 0) {
    std::string err = csv_strerror(csv_error(&parser));
    csv_free(&parser);
    return absl::InvalidArgumentError(absl::StrCat("table '", path, "': ", err));
  }
  csv_free(&parser);
  if (p.rows.empty())
    return absl::InvalidArgumentError(absl::StrCat("table '", path, "' is empty"));
  Table t;
  t.path_ = path;
  t.columns_ = std::move(p.rows[0]);
  for (size_t i = 1; i < p.rows.size(); ++i) {
    if (p.rows[i].size() != t.columns_.size()) {
      return absl::InvalidArgumentError(absl::StrCat("table '", path, "': row ", i + 1, " has ",
                                                     p.rows[i].size(), " fields, the header ",
                                                     t.columns_.size()));
    }
    t.cells_.push_back(std::move(p.rows[i]));
  }
  return t;
}

absl::StatusOr<int> Table::Column(absl::string_view name, absl::string_view flag) const {
  for (size_t i = 0; i < columns_.size(); ++i) {
    if (columns_[i] == name) return static_cast<int>(i);
  }
  return absl::NotFoundError(absl::StrCat(flag, ": table '", path_, "' has no column '", name,
                                          "' (columns: ", absl::StrJoin(columns_, ", "), ")"));
}

absl::StatusOr<double> Table::Number(size_t row, int column) const {
  double v;
  if (!absl::SimpleAtod(cells_[row][column], &v)) {
    return absl::InvalidArgumentError(absl::StrCat("table '", path_, "' row ", row + 2, " column ",
                                                   columns_[column], ": '", cells_[row][column],
                                                   "' is not a number"));
  }
  return v;
}

absl::StatusOr<std::vector<double>> Table::Numbers(size_t row, int column) const {
  std::vector<double> out;
  for (absl::string_view part : absl::StrSplit(cells_[row][column], ';', absl::SkipEmpty())) {
    double v;
    if (!absl::SimpleAtod(part, &v)) {
      return absl::InvalidArgumentError(absl::StrCat("table '", path_, "' row ", row + 2,
                                                     " column ", columns_[column], ": '", part,
                                                     "' is not a number"));
    }
    out.push_back(v);
  }
  if (out.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("table '", path_, "' row ", row + 2, " column ",
                                                   columns_[column], " is empty"));
  }
  return out;
}

}  // namespace nasforge
