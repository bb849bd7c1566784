#include "worker/process_tuning.h"

#include <malloc.h>
#include <sched.h>

#include <cstdlib>
#include <cstring>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace nasforge {

bool KeepHeapAcrossSteps() {
  const char* tunables = std::getenv("GLIBC_TUNABLES");
  if ((tunables != nullptr && std::strstr(tunables, "glibc.malloc.") != nullptr) ||
      std::getenv("MALLOC_MMAP_THRESHOLD_") != nullptr ||
      std::getenv("MALLOC_TRIM_THRESHOLD_") != nullptr) {
    return false;
  }
  bool ok = mallopt(M_MMAP_THRESHOLD, 32 << 20) == 1;
  ok = mallopt(M_TRIM_THRESHOLD, 1 << 30) == 1 && ok;
  ok = mallopt(M_TOP_PAD, 64 << 20) == 1 && ok;
  return ok;
}

absl::StatusOr<std::string> PinToCpus(int n) {
  cpu_set_t allowed;
  CPU_ZERO(&allowed);
  if (sched_getaffinity(0, sizeof(allowed), &allowed) != 0) {
    return absl::InternalError(absl::StrCat("sched_getaffinity: ", std::strerror(errno)));
  }
  cpu_set_t pin;
  CPU_ZERO(&pin);
  std::vector<int> cpus;
  for (int c = 0; c < CPU_SETSIZE && static_cast<int>(cpus.size()) < n; ++c) {
    if (CPU_ISSET(c, &allowed)) {
      CPU_SET(c, &pin);
      cpus.push_back(c);
    }
  }
  if (static_cast<int>(cpus.size()) < n) {
    return absl::FailedPreconditionError(
        absl::StrCat("--pin-threads: ", n, " threads asked, but this process may use only ",
                     cpus.size(), " CPUs; lower --threads or allow more CPUs"));
  }
  if (sched_setaffinity(0, sizeof(pin), &pin) != 0) {
    return absl::InternalError(absl::StrCat("sched_setaffinity: ", std::strerror(errno)));
  }
  return absl::StrJoin(cpus, ",");
}

}  // namespace nasforge
