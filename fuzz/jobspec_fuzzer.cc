// libFuzzer: job-spec parsing and validation (what SubmitJob does with spec_yaml). Any input:
// no crash, no unbounded work; an accepted spec validates again after a YAML round trip.
#include <google/protobuf/stubs/logging.h>

#include <cstdint>
#include <string>

#include "core/jobspec.h"

// Protobuf's own complaints about malformed input are expected here by the thousand.
extern "C" int LLVMFuzzerInitialize(int*, char***) {
  google::protobuf::SetLogHandler(nullptr);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string yaml(reinterpret_cast<const char*>(data), size);
  auto spec = nasforge::ParseJobSpecYaml(yaml);
  if (!spec.ok()) return 0;
  if (!nasforge::ValidateJobSpec(*spec).ok()) __builtin_trap();
  auto again = nasforge::ParseJobSpecYaml(nasforge::MessageToYaml(*spec));
  if (!again.ok()) __builtin_trap();
  return 0;
}
