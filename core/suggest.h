// "Did you mean": the nearest of some known names to a misspelt one (edit distance), for
// unknown YAML keys, CLI commands and flags.
#pragma once

#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace nasforge {

// Levenshtein distance between a and b.
size_t EditDistance(absl::string_view a, absl::string_view b);

// The known name nearest to `word` (case-insensitive) if it is close enough to be a typo
// (distance <= max(2, |word| / 3)); "" otherwise.
std::string Nearest(absl::string_view word, const std::vector<std::string>& known);

}  // namespace nasforge
