// One line per event: `ts=... level=info event=trial_leased job=... trial=3 worker=w1`.
// Thread-safe (a single write(2) per line). Writes to stderr.
#pragma once

#include <initializer_list>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace nasforge {

enum class LogLevel { kDebug, kInfo, kWarn, kError };

struct LogField {
  template <typename T>
  LogField(absl::string_view k, const T& v) : key(k), value(absl::StrCat(v)) {}
  LogField(absl::string_view k, const std::string& v) : key(k), value(v) {}
  LogField(absl::string_view k, absl::string_view v) : key(k), value(v) {}
  LogField(absl::string_view k, const char* v) : key(k), value(v) {}
  LogField(absl::string_view k, bool v) : key(k), value(v ? "true" : "false") {}
  std::string key;
  std::string value;
};

void Log(LogLevel level, absl::string_view event, std::initializer_list<LogField> fields = {});
// Lines below this level are dropped. Default: info (NASFORGE_LOG_LEVEL=debug|info|warn|error).
void SetLogLevel(LogLevel level);

}  // namespace nasforge
