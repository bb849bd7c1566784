// nasforge: the command-line client (cli/app.h). The only place the CLI exits the process.
#include <unistd.h>

#include <iostream>

#include "absl/synchronization/mutex.h"
#include "cli/app.h"

int main(int argc, char** argv) {
  // As in nasforge-controller: no run-time lock-graph walk (bench controller runs one in process).
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  const nasforge::cli::Io io{.out = std::cout,
                             .err = std::cerr,
                             .out_is_terminal = isatty(STDOUT_FILENO) == 1,
                             .err_is_terminal = isatty(STDERR_FILENO) == 1};
  return nasforge::cli::Run(argc, argv, io);
}
