// The nasforge command line: every command group on one CLI11 app. Run parses `argv`, runs the
// chosen command and returns its exit code (cli/command.h); it never exits the process, so tests
// call it with string streams.
#pragma once

#include "cli/command.h"

namespace nasforge::cli {

int Run(int argc, const char* const* argv, const Io& io);

}  // namespace nasforge::cli
