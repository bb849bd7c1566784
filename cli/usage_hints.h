// "Did you mean" for the command line: after CLI11 refuses argv, the unknown command or flag and
// the nearest known one.
#pragma once

#include <string>

#include "CLI/CLI.hpp"

namespace nasforge::cli {

// A line naming the first unknown command or flag in argv and the nearest known one ("unknown
// command 'sbumit'; did you mean 'submit'?"), or "" when argv has none (the error is another).
std::string UsageHint(const CLI::App& app, int argc, const char* const* argv);

}  // namespace nasforge::cli
