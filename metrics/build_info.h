// nasforge_build_info{component, version, compiler, build_type} = 1: which build a process runs,
// for dashboards and for joining alerts to a rollout. Both binaries register it.
#pragma once

#include <prometheus/registry.h>

namespace nasforge {

// The release this binary was built from (CMake's PROJECT_VERSION).
const char* BuildVersion();

void RegisterBuildInfo(prometheus::Registry& registry, const char* component);

}  // namespace nasforge
