// The CLI's commands, one group per file, registered in CommandGroups() (one line each in
// app.cc's Builtins()); Run adds every group to one CLI11 app in `order`. A group adds its
// subcommands to `app`; the one that runs stores its exit code in `context.exit_code`. Tests and
// embedders may Add() groups (docs/EXTENDING.md, "A CLI command").
#pragma once

#include <functional>
#include <string>

#include "CLI/CLI.hpp"
#include "cli/command.h"
#include "cli/connection.h"
#include "core/registry.h"

namespace nasforge::cli {

struct CommandContext {
  Io io;
  ConnectionOptions connection;
  int exit_code = kExitOk;
};

struct CommandGroup {
  std::string name;
  int order = 500;  // where its commands appear in `nasforge --help` (completion comes last)
  std::function<void(CLI::App& app, CommandContext& context)> add;
};
NameRegistry<CommandGroup>& CommandGroups();

// submit, status, watch, cancel, jobs, candidates, ... (job_commands.cc): the controller.
void AddJobCommands(CLI::App& app, CommandContext& context);
// pareto (pareto_command.cc): a job's front under constraints, and its plot.
void AddParetoCommand(CLI::App& app, CommandContext& context);
// space describe|sample, cost (offline_commands.cc): search spaces and the cost model, offline.
void AddOfflineCommands(CLI::App& app, CommandContext& context);
// runtimes (runtimes_command.cc): the latency runtimes, offline.
void AddRuntimesCommand(CLI::App& app, CommandContext& context);
// token create|list|revoke (token_commands.cc): the controller's token file, offline.
void AddTokenCommands(CLI::App& app, CommandContext& context);
// health (health_command.cc): grpc.health.v1 over the connection flags, for probes.
void AddHealthCommand(CLI::App& app, CommandContext& context);
// export (export_command.cc): a trained candidate as a PyTorch bundle.
void AddExportCommand(CLI::App& app, CommandContext& context);
// bench strategies|early-stopping (bench_commands.cc): figures on a table, or on the controller.
void AddBenchCommands(CLI::App& app, CommandContext& context);
// completion: the bash completion script of `app` (call last: it describes what is added).
void AddCompletionCommand(CLI::App& app, CommandContext& context);
// compress (compress_command.cc): compressed variants of one trial.
void AddCompressCommand(CLI::App& app, CommandContext& context);
// importance (importance_command.cc).
void AddImportanceCommand(CLI::App& app, CommandContext& context);
// bench strategies (bench_strategies_command.cc), added by AddBenchCommands.
void AddStrategiesBenchCommand(CLI::App& bench, CommandContext& context);
// bench controller (bench_controller_command.cc), added by AddBenchCommands.
void AddControllerBenchCommand(CLI::App& bench, CommandContext& context);

}  // namespace nasforge::cli
