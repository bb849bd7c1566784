// Command-line parsing for the two daemons (nasforge-controller, nasforge-worker), which define
// their flags with absl: one behaviour with the CLI (CLI11). `--help` / `-h` lists every flag
// of the program with its default and help (absl alone printed "No flags matched" unless one
// knew --helpfull); an unknown flag is refused naming the nearest known one; flag names take
// dashes or underscores (--metrics-listen == --metrics_listen).
#pragma once

#include <string>
#include <vector>

namespace nasforge {

struct FlagHelp {
  std::string name;           // dashed: "metrics-listen"
  std::string type;           // "string", "bool", "int32", ...
  std::string default_value;  // as absl prints it ("" for an empty string)
  std::string help;
};

// The program's own flags (not absl's --flagfile/--fromenv/...), sorted by name.
std::vector<FlagHelp> ProgramFlags();

// The usage text: `summary` (what the program is, how to call it), then one entry per flag.
std::string FlagUsage(const std::string& summary);

// Markdown reference of the flags (docs/reference.md is generated from it).
std::string FlagMarkdown(const std::string& program, const std::string& summary);

// Checks argv before absl sees it: the first unknown flag (after dash/underscore
// normalisation, --noBOOL for a bool) as "unknown flag --x-y (did you mean --x-z?)"; "" if all
// are known. Stops at "--".
std::string UnknownFlag(int argc, char** argv);

// Parses the daemon's command line. `--help`, `-h`, `--helpfull`: prints FlagUsage to stdout
// and exits 0; `--help-markdown`: prints FlagMarkdown and exits 0 (for the docs build); an
// unknown flag or a bad value: says which on stderr and exits 2. Returns the positional args.
std::vector<char*> ParseDaemonFlags(int argc, char** argv, const std::string& program,
                                    const std::string& summary);

}  // namespace nasforge
