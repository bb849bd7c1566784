#include "cli/usage_hints.h"

#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "core/suggest.h"

namespace nasforge::cli {
namespace {

std::vector<std::string> CommandNames(const CLI::App& app) {
  std::vector<std::string> out;
  for (const CLI::App* sub : app.get_subcommands([](const CLI::App*) { return true; })) {
    out.push_back(sub->get_name());
  }
  return out;
}

// "--limit" for each long name of the app's options (and "-n" for short ones).
std::vector<std::string> FlagNames(const CLI::App& app) {
  std::vector<std::string> out;
  for (const CLI::Option* o : app.get_options()) {
    for (const std::string& l : o->get_lnames()) out.push_back("--" + l);
    for (const std::string& s : o->get_snames()) out.push_back("-" + s);
  }
  return out;
}

bool Known(const std::vector<std::string>& names, const std::string& s) {
  for (const std::string& n : names) {
    if (n == s) return true;
  }
  return false;
}

// Whether `flag` (a name of `app`'s options) takes a value: the next word is then not a command.
bool TakesValue(const CLI::App& app, const std::string& flag) {
  for (const CLI::Option* o : app.get_options()) {
    if (o->check_name(flag)) return o->get_type_size() != 0;
  }
  return false;
}

}  // namespace

std::string UsageHint(const CLI::App& app, int argc, const char* const* argv) {
  // Walk the words as CLI11 does: flags of the app in scope, then a command word moves the scope
  // into that command (the top app's flags stay valid after it: fallthrough).
  const CLI::App* scope = &app;
  std::vector<std::string> flags = FlagNames(app);
  std::string path = "nasforge";
  for (int i = 1; i < argc; ++i) {
    const std::string word = argv[i];
    if (word == "--") break;
    if (absl::StartsWith(word, "-")) {
      const std::string name = word.substr(0, word.find('='));
      if (Known(flags, name)) {
        const CLI::App* owner = Known(FlagNames(*scope), name) ? scope : &app;
        if (word.find('=') == std::string::npos && TakesValue(*owner, name)) ++i;
        continue;
      }
      if (name.size() > 1 && absl::StartsWith(name, "-") &&
          name.find_first_not_of("-0123456789.e") != std::string::npos) {
        const std::string best = Nearest(name, flags);
        return absl::StrCat("unknown flag '", name, "' for '", path, "'",
                            best.empty() ? "" : absl::StrCat("; did you mean '", best, "'?"), "\n'",
                            path, " --help' lists its flags");
      }
      continue;  // a negative number
    }
    const std::vector<std::string> commands = CommandNames(*scope);
    if (commands.empty()) continue;  // a positional argument of a command
    if (!Known(commands, word)) {
      if (scope != &app && scope->get_require_subcommand_min() == 0) continue;
      const std::string best = Nearest(word, commands);
      return absl::StrCat("unknown command '", word, "' for '", path, "'",
                          best.empty() ? "" : absl::StrCat("; did you mean '", best, "'?"), "\n'",
                          path, " --help' lists the commands");
    }
    scope = scope->get_subcommand(word);
    path += " " + word;
    for (const std::string& f : FlagNames(*scope)) flags.push_back(f);
  }
  return "";
}

}  // namespace nasforge::cli
