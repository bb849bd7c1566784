// The daemons' command line: unknown flags named with the nearest, --help lists every flag.
#include "core/daemon_flags.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "absl/flags/flag.h"

ABSL_FLAG(std::string, metrics_listen, "127.0.0.1:9464", "/metrics HOST:PORT; empty: off");
ABSL_FLAG(int, threads, 1, "training threads");
ABSL_FLAG(bool, insecure, false, "plain text on a non-loopback address");

namespace nasforge {
namespace {

std::string Unknown(std::vector<std::string> args) {
  args.insert(args.begin(), "prog");
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  return UnknownFlag(static_cast<int>(argv.size()), argv.data());
}

TEST(DaemonFlagsTest, KnownFlagsInEveryForm) {
  EXPECT_EQ(Unknown({"--metrics_listen=1", "--threads", "4", "--insecure", "--noinsecure"}), "");
  EXPECT_EQ(Unknown({"--threads", "--not-a-flag-but-a-value"}), "");  // the value of --threads
  EXPECT_EQ(Unknown({"--", "--whatever"}), "");
}

TEST(DaemonFlagsTest, UnknownNamedWithNearest) {
  EXPECT_EQ(Unknown({"--metrics_lisen=x"}),
            "unknown flag --metrics-lisen (did you mean --metrics-listen?); --help lists them");
  EXPECT_EQ(Unknown({"--thread", "2"}),
            "unknown flag --thread (did you mean --threads?); --help lists them");
  EXPECT_EQ(Unknown({"--zzzzzzzzzz"}), "unknown flag --zzzzzzzzzz; --help lists them");
  // --noNAME only for a bool.
  EXPECT_NE(Unknown({"--nothreads"}), "");
}

TEST(DaemonFlagsTest, UsageListsEveryOwnFlagWithDefaultAndHelp) {
  std::string u = FlagUsage("prog: does things");
  EXPECT_NE(u.find("prog: does things"), std::string::npos);
  EXPECT_NE(u.find("--metrics-listen=STR  (default: 127.0.0.1:9464)"), std::string::npos) << u;
  EXPECT_NE(u.find("/metrics HOST:PORT; empty: off"), std::string::npos);
  EXPECT_NE(u.find("--threads=N  (default: 1)"), std::string::npos);
  EXPECT_NE(u.find("--insecure  (default: false)"), std::string::npos);
  EXPECT_EQ(u.find("flagfile"), std::string::npos) << "absl's own flags are not the program's";
  std::vector<FlagHelp> flags = ProgramFlags();
  ASSERT_EQ(flags.size(), 3u);
  EXPECT_EQ(flags[0].name, "insecure");  // sorted
  std::string md = FlagMarkdown("prog", "does things");
  EXPECT_NE(md.find("| `--threads` | int | `1` | training threads |"), std::string::npos) << md;
}

}  // namespace
}  // namespace nasforge
