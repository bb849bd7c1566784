#include "cli/flags.h"

#include <cmath>
#include <cstdint>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace nasforge::cli {

CLI::Validator IntAtLeast(long long min) {
  return CLI::Validator(
      [min](std::string& text) -> std::string {
        int64_t v = 0;
        if (!absl::SimpleAtoi(text, &v)) return absl::StrCat("'", text, "' is not an integer");
        if (v < min) return absl::StrCat(v, " must be >= ", min);
        return "";
      },
      min == 0 ? ">=0" : absl::StrCat(">=", min));
}

CLI::Validator PositiveReal() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        double v = 0;
        if (!absl::SimpleAtod(text, &v) || !std::isfinite(v)) {
          return absl::StrCat("'", text, "' is not a number");
        }
        if (v <= 0) return absl::StrCat(text, " must be > 0");
        return "";
      },
      ">0");
}

}  // namespace nasforge::cli
