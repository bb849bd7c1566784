#include "cli/command.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "core/jobspec.h"

namespace nasforge::cli {

int ReportError(const Io& io, const absl::Status& status, absl::string_view what) {
  io.err << "error: " << what << (what.empty() ? "" : ": ") << status.message() << "\n";
  return status.code() == absl::StatusCode::kInvalidArgument ? kExitUsage : kExitFailed;
}

absl::StatusOr<std::string> ReadInputFile(const std::string& path, absl::string_view role) {
  std::ifstream f(path, std::ios::binary);
  if (!f) {
    return absl::InvalidArgumentError(
        absl::StrCat(role, " '", path, "': cannot read it (", std::strerror(errno), ")"));
  }
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

absl::Status LoadYaml(const std::string& path, absl::string_view role,
                      google::protobuf::Message* message) {
  auto text = ReadInputFile(path, role);
  if (!text.ok()) return text.status();
  absl::Status st = YamlToMessage(*text, message);
  if (!st.ok()) return absl::InvalidArgumentError(absl::StrCat(path, ": ", st.message()));
  return absl::OkStatus();
}

}  // namespace nasforge::cli
