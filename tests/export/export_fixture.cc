// Writes export bundles (architecture.json, weights.pt, check.pt, as `nasforge export` does) of
// freshly built models, for pytorch_roundtrip_test.py:
//   export_fixture OUT_DIR NAME=ARCH.yaml|SPACE.yaml[@SAMPLE_SEED] ...
// An ARCH.yaml is a concrete architecture; a SPACE.yaml (a search space, or a job spec with
// one) is sampled at SAMPLE_SEED.
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "core/jobspec.h"
#include "core/search_space.h"
#include "worker/trainer.h"

namespace {

bool Write(const std::filesystem::path& p, const std::string& bytes) {
  std::ofstream f(p, std::ios::binary);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  return static_cast<bool>(f);
}

std::string Read(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: export_fixture OUT_DIR NAME=FILE.yaml[@SEED] ...\n");
    return 2;
  }
  const std::filesystem::path out = argv[1];
  for (int i = 2; i < argc; ++i) {
    std::string a = argv[i];
    auto eq = a.find('=');
    std::string name = a.substr(0, eq), file = a.substr(eq + 1);
    uint64_t seed = 1;
    if (auto at = file.find('@'); at != std::string::npos) {
      seed = std::stoull(file.substr(at + 1));
      file = file.substr(0, at);
    }
    nasforge::v1::Architecture arch;
    const std::string text = Read(file);
    if (!nasforge::YamlToMessage(text, &arch).ok()) {
      nasforge::v1::SearchSpace space;
      if (absl::Status s = nasforge::YamlToMessage(text, &space); !s.ok()) {
        std::fprintf(stderr, "%s: neither an architecture nor a search space: %s\n", file.c_str(),
                     std::string(s.message()).c_str());
        return 2;
      }
      arch = nasforge::SampleArchitecture(space, seed);
    }
    auto files = nasforge::ExportFreshModel(arch, seed);
    if (!files.ok()) {
      std::fprintf(stderr, "%s: %s\n", name.c_str(), std::string(files.status().message()).c_str());
      return 1;
    }
    std::filesystem::create_directories(out / name);
    if (!Write(out / name / "architecture.json", nasforge::CanonicalEncoding(arch)) ||
        !Write(out / name / "weights.pt", files->weights) ||
        !Write(out / name / "check.pt", files->check)) {
      std::fprintf(stderr, "%s: cannot write under %s\n", name.c_str(), out.c_str());
      return 1;
    }
    std::printf("%s %s\n", name.c_str(), nasforge::ArchHash(arch).c_str());
  }
  return 0;
}
