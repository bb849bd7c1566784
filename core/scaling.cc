#include "core/scaling.h"

#include <cmath>

#include "core/cost.h"
#include "core/search_space.h"
#include "core/space_kind.h"
#include "core/status.h"

namespace nasforge {

absl::StatusOr<v1::Architecture> ScaleArchitecture(const v1::Architecture& base, double depth,
                                                   double width, double resolution, int divisor) {
  if (depth <= 0 || width <= 0 || resolution <= 0) {
    return absl::InvalidArgumentError("scaling factors must be positive");
  }
  v1::Architecture a = NormalizedArchitecture(base);
  auto d = [&](int v) { return std::max(1, static_cast<int>(std::ceil(v * depth - 1e-9))); };
  auto w = [&](int v) { return MakeDivisible(v * width, divisor); };
  auto r = [&](int v) { return static_cast<int>(std::lround(v * resolution)); };
  const SpaceKind* kind = KindOf(a);
  if (kind == nullptr) return absl::InvalidArgumentError("scaling: the architecture has no kind");
  kind->Scale(&a, ScaleMaps{d, w, r});
  NF_RETURN_IF_ERROR(ValidateArchitecture(a, "scaled"));
  return a;
}

}  // namespace nasforge
