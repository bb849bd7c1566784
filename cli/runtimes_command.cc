// nasforge runtimes: the latency runtimes a hardware target may name (core/latency_runtimes.h),
// with their precisions and options. Offline: the table is compiled in.
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "cli/commands.h"
#include "core/latency_runtimes.h"

namespace nasforge::cli {

void AddRuntimesCommand(CLI::App& app, CommandContext& c) {
  auto json = std::make_shared<bool>(false);
  CLI::App* cmd = app.add_subcommand(
      "runtimes", "latency runtimes a hardware target can name: precisions and options");
  cmd->add_flag("--json", *json, "print them as JSON");
  cmd->callback([&c, json] {
    nlohmann::json all = nlohmann::json::array();
    for (const std::string& name : LatencyRuntimes().Names()) {
      const LatencyRuntimeInfo* rt = LatencyRuntimes().Find(name);
      if (*json) {
        nlohmann::json options = nlohmann::json::array();
        for (const auto& o : rt->options) {
          options.push_back({{"name", o.name}, {"help", o.help}, {"values", o.values}});
        }
        all.push_back({{"name", name},
                       {"help", rt->help},
                       {"precisions", rt->precisions},
                       {"options", options},
                       {"default", name == kDefaultLatencyRuntime}});
        continue;
      }
      c.io.out << name << (name == kDefaultLatencyRuntime ? " (default)" : "") << "\n  " << rt->help
               << "\n  precisions: " << absl::StrJoin(rt->precisions, ", ") << "\n";
      for (const auto& o : rt->options) {
        c.io.out << "  option " << o.name << ": " << absl::StrJoin(o.values, " | ") << " (default "
                 << (o.values.empty() ? "" : o.values.front()) << ") - " << o.help << "\n";
      }
    }
    if (*json) c.io.out << all.dump(2) << "\n";
    c.exit_code = kExitOk;
  });
}

}  // namespace nasforge::cli
