#include "core/log.h"

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>

#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace nasforge {
namespace {

LogLevel InitialLevel() {
  const char* env = std::getenv("NASFORGE_LOG_LEVEL");
  if (env == nullptr) return LogLevel::kInfo;
  if (std::strcmp(env, "debug") == 0) return LogLevel::kDebug;
  if (std::strcmp(env, "warn") == 0) return LogLevel::kWarn;
  if (std::strcmp(env, "error") == 0) return LogLevel::kError;
  return LogLevel::kInfo;
}

std::atomic<LogLevel>& Level() {
  static std::atomic<LogLevel> level{InitialLevel()};
  return level;
}

const char* Name(LogLevel l) {
  switch (l) {
    case LogLevel::kDebug:
      return "debug";
    case LogLevel::kInfo:
      return "info";
    case LogLevel::kWarn:
      return "warn";
    case LogLevel::kError:
      return "error";
  }
  return "info";
}

bool NeedsQuotes(absl::string_view v) {
  if (v.empty()) return true;
  for (char c : v) {
    if (c == ' ' || c == '"' || c == '=' || c == '\t' || c == '\n') return true;
  }
  return false;
}

}  // namespace

void SetLogLevel(LogLevel level) { Level().store(level); }

void Log(LogLevel level, absl::string_view event, std::initializer_list<LogField> fields) {
  if (level < Level().load()) return;
  std::string line = absl::StrCat(
      "ts=", absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", absl::Now(), absl::UTCTimeZone()),
      " level=", Name(level), " event=", event);
  for (const auto& f : fields) {
    absl::StrAppend(&line, " ", f.key, "=");
    if (NeedsQuotes(f.value)) {
      std::string q = "\"";
      for (char c : f.value) {
        if (c == '"' || c == '\\') q.push_back('\\');
        q.push_back(c == '\n' ? ' ' : c);
      }
      q.push_back('"');
      line += q;
    } else {
      line += f.value;
    }
  }
  line.push_back('\n');
  ssize_t unused = ::write(STDERR_FILENO, line.data(), line.size());
  (void)unused;
}

}  // namespace nasforge
