// NaN and infinities have no place in a spec, a space or an architecture: comparisons with NaN
// are false, so a range check like `x < 0 || x > 1` lets it through. One reflective walk refuses
// them in any message, at any depth.
#pragma once

#include <string>

#include "absl/status/status.h"
#include "google/protobuf/message.h"

namespace nasforge {

// INVALID_ARGUMENT naming the first float/double field (at any depth, repeated and map values
// included) that is NaN or infinite. `path` prefixes the field paths.
absl::Status ValidateFinite(const google::protobuf::Message& message, const std::string& path);

}  // namespace nasforge
