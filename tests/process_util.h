// Real processes for end-to-end and fault tests: spawn a binary, stop it, start the controller and
// learn its port from its log.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

extern char** environ;

namespace nasforge::testing {

struct Process {
  pid_t pid = -1;
  FILE* err = nullptr;  // the child's stderr, when captured
};

// Starts `args`; stderr goes to `log` (a file) or, with `capture`, to a pipe in Process::err.
inline Process Spawn(const std::vector<std::string>& args, const std::string& log, bool capture) {
  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  int pipefd[2] = {-1, -1};
  if (capture) {
    EXPECT_EQ(pipe(pipefd), 0);
    posix_spawn_file_actions_adddup2(&fa, pipefd[1], 2);
    posix_spawn_file_actions_addclose(&fa, pipefd[0]);
  } else {
    posix_spawn_file_actions_addopen(&fa, 2, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  }
  Process p;
  EXPECT_EQ(posix_spawn(&p.pid, argv[0], &fa, nullptr, argv.data(), environ), 0) << args[0];
  posix_spawn_file_actions_destroy(&fa);
  if (capture) {
    close(pipefd[1]);
    p.err = fdopen(pipefd[0], "r");
  }
  return p;
}

// Sends `sig` and reaps the process; its wait status.
inline int Stop(Process& p, int sig = SIGTERM) {
  if (p.pid <= 0) return -1;
  kill(p.pid, sig);
  int status = 0;
  waitpid(p.pid, &status, 0);
  p.pid = -1;
  return status;
}

// Starts the controller on `store_url` and blocks on its log until it says which port it bound
// (0 if it exits first; its log lines then are in *lines_out when given). The rest of its log is
// drained in the background (and appended to `log` when not empty) so it never blocks.
inline Process StartController(const std::string& listen, const std::string& store_url, int* port,
                               const std::vector<std::string>& extra = {},
                               const std::string& log = "", std::string* lines_out = nullptr) {
  std::vector<std::string> args = {NASFORGE_CONTROLLER_BIN, "--listen=" + listen,
                                   "--store=" + store_url, "--metrics-listen="};
  args.insert(args.end(), extra.begin(), extra.end());
  Process p = Spawn(args, "", /*capture=*/true);
  *port = 0;
  char line[4096];
  std::regex started("event=controller_started port=([0-9]+)");
  FILE* out = log.empty() ? nullptr : std::fopen(log.c_str(), "a");
  while (*port == 0 && fgets(line, sizeof line, p.err) != nullptr) {
    if (out) std::fputs(line, out);
    if (lines_out) *lines_out += line;
    std::cmatch m;
    if (std::regex_search(line, m, started)) *port = std::stoi(m[1]);
  }
  std::thread([f = p.err, out] {
    char buf[4096];
    while (fgets(buf, sizeof buf, f) != nullptr) {
      if (out) std::fputs(buf, out);
      if (std::getenv("NASFORGE_E2E_VERBOSE")) std::fputs(buf, stderr);
    }
    fclose(f);
    if (out) std::fclose(out);
  }).detach();
  p.err = nullptr;
  return p;
}

}  // namespace nasforge::testing
