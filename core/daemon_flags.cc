// The daemons' command line (daemon_flags.h).
#include "core/daemon_flags.h"

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "absl/flags/commandlineflag.h"
#include "absl/flags/parse.h"
#include "absl/flags/reflection.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "core/flags.h"
#include "core/suggest.h"

namespace nasforge {
namespace {

std::string Dashed(absl::string_view name) { return absl::StrReplaceAll(name, {{"_", "-"}}); }

// absl's own flags (--flagfile, --fromenv, --undefok, ...) live in absl's files.
bool OwnFlag(const absl::CommandLineFlag& f) {
  const std::string file = f.Filename();
  return file.find("absl/") == std::string::npos && !f.IsRetired();
}

std::string TypeOf(const absl::CommandLineFlag& f) {
  if (f.IsOfType<bool>()) return "bool";
  if (f.IsOfType<int>()) return "int";
  if (f.IsOfType<int64_t>()) return "int64";
  if (f.IsOfType<double>()) return "double";
  if (f.IsOfType<std::string>()) return "string";
  return "value";
}

std::vector<std::string> Wrap(const std::string& text, size_t width) {
  std::vector<std::string> lines;
  std::string line;
  for (absl::string_view w : absl::StrSplit(text, ' ', absl::SkipEmpty())) {
    if (!line.empty() && line.size() + 1 + w.size() > width) {
      lines.push_back(line);
      line.clear();
    }
    absl::StrAppend(&line, line.empty() ? "" : " ", w);
  }
  if (!line.empty()) lines.push_back(line);
  return lines;
}

}  // namespace

std::vector<FlagHelp> ProgramFlags() {
  std::vector<FlagHelp> out;
  for (const auto& [name, flag] : absl::GetAllFlags()) {
    if (!OwnFlag(*flag)) continue;
    out.push_back({Dashed(name), TypeOf(*flag), flag->DefaultValue(), flag->Help()});
  }
  std::sort(out.begin(), out.end(),
            [](const FlagHelp& a, const FlagHelp& b) { return a.name < b.name; });
  return out;
}

std::string FlagUsage(const std::string& summary) {
  std::string s = absl::StrCat(summary, "\n\nFlags (--name=value or --name value; dashes or ",
                               "underscores; --noNAME for a bool):\n");
  for (const FlagHelp& f : ProgramFlags()) {
    std::string head = absl::StrCat("  --", f.name);
    if (f.type != "bool") absl::StrAppend(&head, "=", f.type == "string" ? "STR" : "N");
    absl::StrAppend(&s, head, "  (default: ", f.default_value.empty() ? "\"\"" : f.default_value,
                    ")\n");
    for (const std::string& l : Wrap(f.help, 88)) absl::StrAppend(&s, "      ", l, "\n");
  }
  absl::StrAppend(&s, "  --help, -h  this text\n");
  return s;
}

std::string FlagMarkdown(const std::string& program, const std::string& summary) {
  std::string s = absl::StrCat("### ", program, "\n\n", summary, "\n\n",
                               "| flag | type | default | what it does |\n|---|---|---|---|\n");
  for (const FlagHelp& f : ProgramFlags()) {
    absl::StrAppend(&s, "| `--", f.name, "` | ", f.type, " | ",
                    f.default_value.empty() ? "" : absl::StrCat("`", f.default_value, "`"), " | ",
                    absl::StrReplaceAll(f.help, {{"|", "\\|"}, {"\n", " "}}), " |\n");
  }
  return s;
}

std::string UnknownFlag(int argc, char** argv) {
  const auto all = absl::GetAllFlags();
  std::vector<std::string> known;
  for (const auto& [name, flag] : all) {
    if (OwnFlag(*flag)) known.push_back(Dashed(name));
  }
  for (int i = 1; i < argc; ++i) {
    absl::string_view a = argv[i];
    if (a == "--") break;
    if (a.size() < 2 || a[0] != '-') continue;
    absl::string_view body = a.substr(a[1] == '-' ? 2 : 1);
    absl::string_view name = body.substr(0, body.find('='));
    std::string us = absl::StrReplaceAll(name, {{"-", "_"}});
    auto it = all.find(us);
    if (it != all.end()) {
      // A value in the next argument: skip it (a bool takes none).
      if (body.find('=') == absl::string_view::npos && !it->second->IsOfType<bool>()) ++i;
      continue;
    }
    if (us.rfind("no", 0) == 0) {
      auto b = all.find(us.substr(2));
      if (b != all.end() && b->second->IsOfType<bool>()) continue;
    }
    std::string near = Nearest(Dashed(name), known);
    return absl::StrCat("unknown flag --", Dashed(name),
                        near.empty() ? "" : absl::StrCat(" (did you mean --", near, "?)"),
                        "; --help lists them");
  }
  return "";
}

std::vector<char*> ParseDaemonFlags(int argc, char** argv, const std::string& program,
                                    const std::string& summary) {
  for (int i = 1; i < argc; ++i) {
    absl::string_view a = argv[i];
    if (a == "--") break;
    if (a == "--help" || a == "-h" || a == "--helpfull" || a == "-help") {
      std::fputs(FlagUsage(summary).c_str(), stdout);
      std::exit(0);
    }
    if (a == "--help-markdown" || a == "--help_markdown") {
      std::fputs(FlagMarkdown(program, summary).c_str(), stdout);
      std::exit(0);
    }
  }
  NormalizeFlagNames(argc, argv);
  if (std::string bad = UnknownFlag(argc, argv); !bad.empty()) {
    std::fprintf(stderr, "%s: %s\n", program.c_str(), bad.c_str());
    std::exit(2);
  }
  // A bad value (--threads=x) is absl's to report: it names the flag and exits 1.
  return absl::ParseCommandLine(argc, argv);
}

}  // namespace nasforge
