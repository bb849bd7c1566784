#include "cli/app.h"

#include <algorithm>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "cli/commands.h"
#include "cli/usage_hints.h"

namespace nasforge::cli {
namespace {

// The command groups, in the order `nasforge --help` lists them.
void Builtins(NameRegistry<CommandGroup>& r) {
  r.AddBuiltin({"jobs", 10, AddJobCommands});
  r.AddBuiltin({"pareto", 11, AddParetoCommand});
  r.AddBuiltin({"importance", 15, AddImportanceCommand});
  r.AddBuiltin({"compress", 16, AddCompressCommand});
  r.AddBuiltin({"offline", 20, AddOfflineCommands});
  r.AddBuiltin({"runtimes", 30, AddRuntimesCommand});
  r.AddBuiltin({"token", 40, AddTokenCommands});
  r.AddBuiltin({"health", 50, AddHealthCommand});
  r.AddBuiltin({"export", 60, AddExportCommand});
  r.AddBuiltin({"bench", 70, AddBenchCommands});
  // Last: the completion script describes every command added before it.
  r.AddBuiltin({"completion", 1'000'000, AddCompletionCommand});
}

}  // namespace

NameRegistry<CommandGroup>& CommandGroups() {
  return GlobalRegistry<CommandGroup>("command group", &Builtins);
}

int Run(int argc, const char* const* argv, const Io& io) {
  CommandContext context{.io = io};
  CLI::App app(
      "nasforge: submit and follow neural-architecture-search jobs, query their Pareto "
      "fronts, inspect search spaces and costs, run benchmarks.",
      "nasforge");
  app.footer(
      "The bearer token is read from --token-file or $NASFORGE_TOKEN, never from the command "
      "line.\nExit codes: 0 done, 1 failed (controller, store, file system), 2 bad usage or "
      "input, 3 the watched job did not succeed.\n`nasforge COMMAND --help` shows a command's "
      "flags.");
  app.require_subcommand(1);
  app.fallthrough();  // connection flags may follow the command
  app.failure_message([](const CLI::App*, const CLI::Error& e) {
    return std::string("error: ") + e.what() +
           "\n'nasforge --help' lists the commands, 'nasforge COMMAND --help' their flags\n";
  });
  AddConnectionOptions(app, &context.connection);
  std::vector<const CommandGroup*> groups;
  for (const std::string& name : CommandGroups().Names()) {
    groups.push_back(CommandGroups().Find(name));
  }
  std::stable_sort(groups.begin(), groups.end(), [](const CommandGroup* a, const CommandGroup* b) {
    return a->order < b->order;
  });
  for (const CommandGroup* g : groups) g->add(app, context);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // An unknown command or flag: name it and the nearest known one instead of CLI11's list.
    if (e.get_exit_code() != static_cast<int>(CLI::ExitCodes::Success)) {
      if (std::string hint = UsageHint(app, argc, argv); !hint.empty()) {
        io.err << "error: " << hint << "\n";
        return kExitUsage;
      }
    }
    const int code = app.exit(e, io.out, io.err);
    return code == static_cast<int>(CLI::ExitCodes::Success) ? kExitOk : kExitUsage;
  }
  return context.exit_code;
}

}  // namespace nasforge::cli
