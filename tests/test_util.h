// Helpers shared by the tests: files of the source tree (search spaces, example jobs), and the
// output of a shell command (curl, openssl).
#pragma once

#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "core/jobspec.h"
#include "gtest/gtest.h"

namespace nasforge::testing {

// Contents of `relative` (from the repository root); a test failure if it cannot be read.
inline std::string ReadSourceFile(const std::string& relative) {
  std::ifstream f(std::string(NASFORGE_SOURCE_DIR) + "/" + relative);
  EXPECT_TRUE(f.good()) << "cannot read " << relative;
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// The quick-start job spec, as YAML text.
inline std::string ReadExampleJob() {
  return ReadSourceFile("search_spaces/examples/fashion_mnist_quick.yaml");
}

// search_spaces/mbconv_small.yaml, parsed.
inline v1::SearchSpace LoadSmallSpace() {
  v1::SearchSpace s;
  absl::Status st = YamlToMessage(ReadSourceFile("search_spaces/mbconv_small.yaml"), &s);
  EXPECT_TRUE(st.ok()) << st.ToString();
  return s;
}

}  // namespace nasforge::testing

namespace nasforge::testing {

// Every search-space file shipped in search_spaces/ (not the examples or references).
inline std::vector<std::string> ShippedSpaceFiles() {
  return {"mbconv_small.yaml",    "mbconv_imagenet.yaml",     "resnet_small.yaml",
          "resnet_imagenet.yaml", "convnext_small.yaml",      "convnext_imagenet.yaml",
          "nb201_cifar.yaml",     "nb201_fashion_mnist.yaml", "mlp_tabular.yaml"};
}

// search_spaces/<name>, parsed (a test failure if it does not parse).
inline v1::SearchSpace LoadSpace(const std::string& name) {
  v1::SearchSpace s;
  absl::Status st = YamlToMessage(ReadSourceFile("search_spaces/" + name), &s);
  EXPECT_TRUE(st.ok()) << name << ": " << st.ToString();
  return s;
}

// search_spaces/reference/<name>, parsed.
inline v1::Architecture LoadReference(const std::string& name) {
  v1::Architecture a;
  absl::Status st = YamlToMessage(ReadSourceFile("search_spaces/reference/" + name), &a);
  EXPECT_TRUE(st.ok()) << name << ": " << st.ToString();
  return a;
}

// Standard output of the shell command `cmd`.
inline std::string CommandOutput(const std::string& cmd) {
  std::string out;
  FILE* p = popen(cmd.c_str(), "r");
  if (p == nullptr) return out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  pclose(p);
  return out;
}

}  // namespace nasforge::testing
