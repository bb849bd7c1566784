// token create|list|revoke: edits the controller's token file offline (the controller re-reads
// it when it changes, so a revoked token is refused within a second).
#include <memory>
#include <string>

#include "absl/strings/str_format.h"
#include "absl/time/time.h"
#include "cli/commands.h"
#include "controller/auth.h"

namespace nasforge::cli {
namespace {

struct TokenOptions {
  std::string file, name, role;
};

int List(CommandContext& c, const TokenOptions& o) {
  auto tokens = TokenFile::Load(o.file);
  if (!tokens.ok()) return ReportError(c.io, tokens.status(), "token list");
  c.io.out << absl::StrFormat("%-24s %-8s %s\n", "NAME", "ROLE", "CREATED");
  for (const auto& e : tokens->entries()) {
    c.io.out << absl::StrFormat(
        "%-24s %-8s %s\n", e.name, RoleName(e.role),
        absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", absl::FromUnixSeconds(e.created),
                         absl::UTCTimeZone()));
  }
  return kExitOk;
}

int Create(CommandContext& c, const TokenOptions& o) {
  auto role = ParseRole(o.role);
  if (!role.ok()) return ReportError(c.io, role.status(), "token create --role");
  auto tokens = TokenFile::Load(o.file);
  if (!tokens.ok()) return ReportError(c.io, tokens.status(), "token create");
  auto secret = tokens->Create(o.name, *role, absl::Now());
  absl::Status st = secret.ok() ? tokens->Save(o.file) : secret.status();
  if (!st.ok()) return ReportError(c.io, st, "token create");
  // The only time the token is shown: stdout alone, so `> FILE` captures just the token.
  c.io.out << *secret << "\n";
  c.io.err << "token '" << o.name << "' (" << RoleName(*role)
           << ") created; store it now, it cannot be shown again\n";
  return kExitOk;
}

int Revoke(CommandContext& c, const TokenOptions& o) {
  auto tokens = TokenFile::Load(o.file);
  absl::Status st = tokens.ok() ? tokens->Revoke(o.name) : tokens.status();
  if (st.ok()) st = tokens->Save(o.file);
  if (!st.ok()) return ReportError(c.io, st, "token revoke");
  c.io.err << "token '" << o.name << "' revoked\n";
  return kExitOk;
}

}  // namespace

void AddTokenCommands(CLI::App& app, CommandContext& c) {
  CLI::App* token = app.add_subcommand("token", "the controller's token file (offline)");
  token->require_subcommand(1);
  auto o = std::make_shared<TokenOptions>();
  auto add = [&](const std::string& name, const std::string& help, bool named,
                 int (*run)(CommandContext&, const TokenOptions&)) {
    CLI::App* cmd = token->add_subcommand(name, help);
    cmd->add_option("--file", o->file, "the token file (nasforge-controller --auth-tokens)")
        ->required();
    if (named) cmd->add_option("--name", o->name, "who the token is for")->required();
    cmd->callback([&c, o, run] { c.exit_code = run(c, *o); });
    return cmd;
  };
  add("create", "add a token (printed once, on stdout) to the file", true, Create)
      ->add_option("--role", o->role, "read, submit, admin or worker")
      ->required()
      ->check(CLI::IsMember({"read", "submit", "admin", "worker"}));
  add("list", "names, roles and creation times (never the tokens)", false, List);
  add("revoke", "remove a token; the controller refuses it within a second", true, Revoke);
}

}  // namespace nasforge::cli
