// What every CLI command shares: where it prints, how a failure becomes an exit code, and how it
// reads the files named on the command line. Commands return their exit code; only main() exits.
#pragma once

#include <ostream>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "google/protobuf/message.h"

namespace nasforge::cli {

// Exit codes of every command.
enum ExitCode : int {
  kExitOk = 0,
  kExitFailed = 1,           // the controller, the store or a file system failed
  kExitUsage = 2,            // bad flags, arguments or input files (fix the command)
  kExitJobNotSucceeded = 3,  // `watch` / `submit --watch`: the job ended, but not SUCCEEDED
};

struct Io {
  std::ostream& out;  // results (what a script captures)
  std::ostream& err;  // errors, hints and progress
  // `out` is a terminal: progress is redrawn in place instead of printed line by line.
  bool out_is_terminal = false;
  bool err_is_terminal = false;
};

// Prints "error: WHAT: MESSAGE" to io.err and returns kExitUsage for INVALID_ARGUMENT (the
// input was wrong), kExitFailed otherwise.
int ReportError(const Io& io, const absl::Status& status, absl::string_view what);

// The contents of `path`; INVALID_ARGUMENT "ROLE 'PATH': cannot read it (...)" if it cannot be
// read, where `role` names the argument or flag ("JOB.yaml", "--space").
absl::StatusOr<std::string> ReadInputFile(const std::string& path, absl::string_view role);

// A YAML file named on the command line (`role`: its argument, "ARCH.yaml") read into `message`
// along its schema; INVALID_ARGUMENT naming the path (and the YAML line) on a bad file.
absl::Status LoadYaml(const std::string& path, absl::string_view role,
                      google::protobuf::Message* message);

}  // namespace nasforge::cli
