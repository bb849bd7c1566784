// One unlabelled counter or gauge registered in `registry` (the controller's and the worker's
// metrics structs are built from these). Header-only: callers link prometheus-cpp core.
#pragma once

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>

namespace nasforge {

inline prometheus::Counter& NewCounter(prometheus::Registry& registry, const char* name,
                                       const char* help) {
  return prometheus::BuildCounter().Name(name).Help(help).Register(registry).Add({});
}

inline prometheus::Gauge& NewGauge(prometheus::Registry& registry, const char* name,
                                   const char* help) {
  return prometheus::BuildGauge().Name(name).Help(help).Register(registry).Add({});
}

}  // namespace nasforge
