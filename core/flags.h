// Lets absl flags accept dashed names (--metrics-listen) as well as underscored ones: rewrites
// the name part of each "--flag[=value]" argument in place, before absl::ParseCommandLine.
#pragma once

namespace nasforge {

inline void NormalizeFlagNames(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    char* a = argv[i];
    if (a[0] != '-' || a[1] != '-' || a[2] == '\0') continue;
    for (char* p = a + 2; *p != '\0' && *p != '='; ++p) {
      if (*p == '-') *p = '_';
    }
  }
}

}  // namespace nasforge
