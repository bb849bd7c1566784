#include "core/suggest.h"

#include <algorithm>
#include <cstdint>

#include "absl/strings/ascii.h"

namespace nasforge {

size_t EditDistance(absl::string_view a, absl::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

std::string Nearest(absl::string_view word, const std::vector<std::string>& known) {
  const std::string w = absl::AsciiStrToLower(word);
  std::string best;
  size_t best_d = SIZE_MAX;
  for (const std::string& k : known) {
    const size_t d = EditDistance(w, absl::AsciiStrToLower(k));
    if (d < best_d) best_d = d, best = k;
  }
  return !best.empty() && best_d <= std::max<size_t>(2, word.size() / 3) ? best : "";
}

}  // namespace nasforge
