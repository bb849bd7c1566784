#include "cli/peer_script.h"

#include <sys/wait.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"

namespace nasforge::cli {

absl::StatusOr<nlohmann::json> RunPeerScript(const std::string& script, const std::string& flag,
                                             const std::vector<std::string>& args,
                                             const std::string& hint) {
  if (!std::filesystem::exists(script)) {
    return absl::InvalidArgumentError(
        absl::StrCat(flag, ": ", script, " not found (run from the repository root)"));
  }
  auto quote = [](const std::string& s) {
    return "'" + absl::StrReplaceAll(s, {{"'", "'\\''"}}) + "'";
  };
  std::string cmd = absl::StrCat("/usr/bin/python3 ", quote(script));
  for (const auto& a : args) absl::StrAppend(&cmd, " ", quote(a));
  FILE* p = popen(cmd.c_str(), "r");
  if (p == nullptr) return absl::InternalError("cannot start /usr/bin/python3");
  std::string out;
  char buf[4096];
  while (size_t n = fread(buf, 1, sizeof buf, p)) out.append(buf, n);
  const int rc = pclose(p);
  if (rc != 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("the peer failed (exit ", WEXITSTATUS(rc), "); ", hint, " ", cmd));
  }
  auto j = nlohmann::json::parse(out, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    return absl::InternalError(absl::StrCat("the peer printed no figures: ", out));
  }
  return j;
}

}  // namespace nasforge::cli
