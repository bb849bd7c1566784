// libFuzzer: search spaces and architectures as protobuf bytes (what arrives in a SubmitJob spec
// or a lease): validation, sampling, gene encoding/decoding, hashing and cost computation.
#include <google/protobuf/stubs/logging.h>

#include <cstdint>
#include <string>

#include "core/cost.h"
#include "core/search_space.h"

// Protobuf's own complaints about malformed input are expected here by the thousand.
extern "C" int LLVMFuzzerInitialize(int*, char***) {
  google::protobuf::SetLogHandler(nullptr);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const bool as_space = data[0] & 1;
  if (as_space) {
    nasforge::v1::SearchSpace space;
    if (!space.ParseFromArray(data + 1, static_cast<int>(size - 1))) return 0;
    if (!nasforge::ValidateSearchSpace(space, "search_space").ok()) return 0;
    (void)nasforge::SpaceSize(space);
    nasforge::v1::Architecture arch = nasforge::SampleArchitecture(space, size);
    if (!nasforge::CheckInSpace(space, arch, "arch").ok()) __builtin_trap();
    auto genes = nasforge::EncodeArchitecture(space, arch);
    if (!genes) __builtin_trap();
    if (nasforge::ArchHash(nasforge::DecodeArchitecture(space, *genes)) !=
        nasforge::ArchHash(arch)) {
      __builtin_trap();
    }
    (void)nasforge::ComputeCost(arch);
  } else {
    nasforge::v1::Architecture arch;
    if (!arch.ParseFromArray(data + 1, static_cast<int>(size - 1))) return 0;
    if (!nasforge::ValidateArchitecture(arch, "architecture").ok()) return 0;
    (void)nasforge::ComputeCost(arch);
    (void)nasforge::ArchHash(arch);
  }
  return 0;
}
