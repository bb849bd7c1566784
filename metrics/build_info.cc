#include "metrics/build_info.h"

#include <prometheus/gauge.h>

#ifndef NASFORGE_VERSION
#define NASFORGE_VERSION "unknown"
#endif
#ifndef NASFORGE_BUILD_TYPE
#define NASFORGE_BUILD_TYPE "unknown"
#endif

namespace nasforge {

const char* BuildVersion() { return NASFORGE_VERSION; }

void RegisterBuildInfo(prometheus::Registry& registry, const char* component) {
#if defined(__clang__)
  const char* compiler = "clang-" __clang_version__;
#elif defined(__GNUC__)
  const char* compiler = "gcc-" __VERSION__;
#else
  const char* compiler = "unknown";
#endif
  prometheus::BuildGauge()
      .Name("nasforge_build_info")
      .Help("Always 1; the labels name the build this process runs.")
      .Register(registry)
      .Add({{"component", component},
            {"version", BuildVersion()},
            {"compiler", compiler},
            {"build_type", NASFORGE_BUILD_TYPE}})
      .Set(1);
}

}  // namespace nasforge
