#include "core/scaling.h"

#include <cmath>

#include "core/cost.h"
#include "core/search_space.h"
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
  if (a.has_mbconv()) {
    auto* m = a.mutable_mbconv();
    m->set_stem_channels(w(m->stem_channels()));
    for (auto& st : *m->mutable_stages()) {
      st.set_channels(w(st.channels()));
      st.set_repeats(d(st.repeats()));
    }
    if (m->head_channels() > 0) m->set_head_channels(w(m->head_channels()));
    m->set_resolution(r(m->resolution()));
  } else if (a.has_resnet()) {
    auto* m = a.mutable_resnet();
    m->set_stem_channels(w(m->stem_channels()));
    for (auto& st : *m->mutable_stages()) {
      st.set_channels(w(st.channels()));
      st.set_blocks(d(st.blocks()));
    }
    m->set_resolution(r(m->resolution()));
  } else if (a.has_convnext()) {
    auto* m = a.mutable_convnext();
    for (auto& st : *m->mutable_stages()) {
      st.set_channels(w(st.channels()));
      st.set_depth(d(st.depth()));
    }
    m->set_resolution(r(m->resolution()));
  } else if (a.has_nb201()) {
    auto* m = a.mutable_nb201();
    m->set_channels(w(m->channels()));
    m->set_cells_per_stage(d(m->cells_per_stage()));
    m->set_resolution(r(m->resolution()));
  } else if (a.has_mlp()) {
    for (auto& u : *a.mutable_mlp()->mutable_units()) u = w(u);
  } else {
    return absl::InvalidArgumentError("scaling: the architecture has no kind");
  }
  NF_RETURN_IF_ERROR(ValidateArchitecture(a, "scaled"));
  return a;
}

}  // namespace nasforge
