// libFuzzer: what a worker may send (ReportResult / ReportProgress bytes) through the checks the
// controller applies before recording anything.
#include <google/protobuf/stubs/logging.h>

#include <cmath>
#include <cstdint>

#include "core/reported_metrics.h"

// Protobuf's own complaints about malformed input are expected here by the thousand.
extern "C" int LLVMFuzzerInitialize(int*, char***) {
  google::protobuf::SetLogHandler(nullptr);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  nasforge::v1::JobSpec spec;
  spec.set_accuracy_scale(data[0] & 1 ? nasforge::v1::PERCENT : nasforge::v1::FRACTION);
  nasforge::v1::ReportResultRequest result;
  if (result.ParseFromArray(data + 1, static_cast<int>(size - 1))) {
    if (nasforge::ValidateReportedMetrics(spec, result.metrics()).ok()) {
      for (const auto& [k, v] : result.metrics()) {
        if (!std::isfinite(v)) __builtin_trap();  // accepted means finite
      }
    }
  }
  nasforge::v1::ReportProgressRequest progress;
  if (progress.ParseFromArray(data + 1, static_cast<int>(size - 1))) {
    if (nasforge::ValidateCurvePoint(spec, progress.point()).ok() &&
        !std::isfinite(progress.point().value())) {
      __builtin_trap();
    }
  }
  return 0;
}
