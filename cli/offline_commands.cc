// space describe|sample and cost: search spaces and the analytic cost model, no controller.
#include <google/protobuf/util/json_util.h>

#include <cstdint>
#include <memory>
#include <string>

#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "cli/commands.h"
#include "cli/flags.h"
#include "core/cost.h"
#include "core/jobspec.h"
#include "core/search_space.h"
#include "core/status.h"
#include "report/format.h"

namespace nasforge::cli {
using namespace ::nasforge::report;  // NOLINT: the shared formatting of jobs, tables and plots
namespace {

// The YAML file at `path` parsed into `message`; INVALID_ARGUMENT naming the file.
struct CostOptions {
  std::string file;
  int resolution = 0;
  bool layers = false, json = false;
};

std::string CostLayers(const ArchCost& c) {
  std::string s = absl::StrFormat("%-32s %-6s %6s %6s %3s %3s %6s %5s %14s %12s\n", "layer", "kind",
                                  "in", "out", "k", "s", "groups", "size", "macs", "params");
  for (const auto& l : c.layers) {
    absl::StrAppendFormat(&s, "%-32s %-6s %6d %6d %3d %3d %6d %5d %14d %12d\n", l.name, l.kind,
                          l.in_channels, l.out_channels, l.kernel, l.stride, l.groups, l.out_size,
                          l.macs, l.params);
  }
  return s;
}

int Cost(CommandContext& c, const CostOptions& o) {
  v1::Architecture arch;
  absl::Status st = LoadYaml(o.file, "ARCH.yaml", &arch);
  if (st.ok()) st = ValidateArchitecture(arch, "architecture");
  if (st.ok() && o.resolution > 0) {
    st = SetResolution(&arch, o.resolution);
    if (st.ok()) st = ValidateArchitecture(arch, "architecture");
    if (!st.ok()) st = absl::InvalidArgumentError(absl::StrCat("--resolution: ", st.message()));
  }
  if (!st.ok()) return ReportError(c.io, st, "cost");
  const ArchCost cost = ComputeCost(arch);
  const InputShape in = ArchInputShape(arch);
  if (o.json) {
    c.io.out << absl::StrFormat(
        "{\"macs\": %d, \"params\": %d, \"kind\": \"%s\", \"resolution\": %d, \"hash\": \"%s\"}\n",
        cost.macs, cost.params, KindName(arch), in.flat ? 0 : in.height, ArchHash(arch));
    return kExitOk;
  }
  if (o.layers) c.io.out << CostLayers(cost);
  c.io.out << "kind   " << KindName(arch) << "\nmacs   " << cost.macs << " ("
           << HumanNumber(cost.macs) << ")\nparams " << cost.params << " ("
           << HumanNumber(cost.params) << ")\nhash   " << ArchHash(arch) << "\n";
  return kExitOk;
}

// The space in `path`, parsed and validated.
absl::StatusOr<v1::SearchSpace> LoadSpace(const std::string& path) {
  v1::SearchSpace space;
  NF_RETURN_IF_ERROR(LoadYaml(path, "SPACE.yaml", &space));
  absl::Status st = ValidateSearchSpace(space, "search_space");
  if (!st.ok()) return absl::InvalidArgumentError(absl::StrCat(path, ": ", st.message()));
  return space;
}

int Describe(CommandContext& c, const std::string& path) {
  auto space = LoadSpace(path);
  if (!space.ok()) return ReportError(c.io, space.status(), "space describe");
  c.io.out << "kind: " << KindName(*space) << "\ndecisions:\n";
  for (const auto& d : SpaceDecisions(*space)) {
    c.io.out << "  " << d.name << ": " << d.choices << " choice" << (d.choices == 1 ? "" : "s");
    if (!d.labels.empty()) c.io.out << " (" << absl::StrJoin(d.labels, ", ") << ")";
    c.io.out << "\n";
  }
  c.io.out << "size: " << SpaceSize(*space) << " architectures\nspace:\n"
           << ProtoJson(*space) << "\n";
  return kExitOk;
}

struct SampleOptions {
  std::string file;
  int count = 1;
  uint64_t seed = 0;
  bool json = false;
};

int Sample(CommandContext& c, const SampleOptions& o) {
  auto space = LoadSpace(o.file);
  if (!space.ok()) return ReportError(c.io, space.status(), "space sample");
  for (int i = 0; i < o.count; ++i) {
    const v1::Architecture arch = SampleArchitecture(*space, MixSeed(o.seed, i));
    const ArchCost cost = ComputeCost(arch);
    if (o.json) {
      std::string json;
      google::protobuf::util::JsonPrintOptions jo;
      jo.preserve_proto_field_names = true;
      (void)google::protobuf::util::MessageToJsonString(arch, &json, jo);
      c.io.out << absl::StrFormat(
          "{\"hash\": \"%s\", \"macs\": %d, \"params\": %d, \"architecture\": %s}\n",
          ArchHash(arch), cost.macs, cost.params, json);
    } else {
      // A YAML stream: each document is an architecture file for `nasforge cost`.
      c.io.out << absl::StrFormat("--- # hash %s, macs %d, params %d\n", ArchHash(arch), cost.macs,
                                  cost.params)
               << MessageToYaml(arch) << "\n";
    }
  }
  return kExitOk;
}

}  // namespace

void AddOfflineCommands(CLI::App& app, CommandContext& c) {
  {
    auto o = std::make_shared<CostOptions>();
    CLI::App* cmd = app.add_subcommand("cost", "analytic MACs and params of an architecture");
    cmd->add_option("ARCH.yaml", o->file, "architecture file (YAML)")->required();
    cmd->add_option("--resolution", o->resolution, "input resolution to cost it at")
        ->check(IntAtLeast(1));
    cmd->add_flag("--layers", o->layers, "a line per layer");
    cmd->add_flag("--json", o->json, "print the answer as JSON");
    cmd->callback([&c, o] { c.exit_code = Cost(c, *o); });
  }
  CLI::App* space = app.add_subcommand("space", "search spaces: their choices, size and samples");
  space->require_subcommand(1);
  {
    auto file = std::make_shared<std::string>();
    CLI::App* cmd = space->add_subcommand("describe", "choices and size of a search space");
    cmd->add_option("SPACE.yaml", *file, "search-space file (YAML)")->required();
    cmd->callback([&c, file] { c.exit_code = Describe(c, *file); });
  }
  {
    auto o = std::make_shared<SampleOptions>();
    CLI::App* cmd =
        space->add_subcommand("sample", "valid architectures of a space (a YAML stream)");
    cmd->add_option("SPACE.yaml", o->file, "search-space file (YAML)")->required();
    cmd->add_option("-n,--count", o->count, "how many")->check(IntAtLeast(1));
    cmd->add_option("--seed", o->seed, "sampler seed (the same seed, the same architectures)")
        ->check(IntAtLeast(0));
    cmd->add_flag("--json", o->json, "one JSON object per line instead of YAML");
    cmd->callback([&c, o] { c.exit_code = Sample(c, *o); });
  }
}

}  // namespace nasforge::cli
