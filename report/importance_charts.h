// The dashboard's importance panel (core/importance.h) as self-contained SVG: each decision's
// share of an objective's variance, and one decision's values against the objective -- on a
// number axis (log-scaled for a log-scaled parameter) or, for categories, one column per value.
// Pure functions of the report, unit-tested.
#pragma once

#include <cstddef>
#include <string>

#include "core/importance.h"

namespace nasforge::report {

// One bar per decision, most important first, at most `max_shown`; each says its share, its
// trials and the value whose trials did best. `note` (e.g. what was sampled) under the title.
std::string ImportanceSvg(const ImportanceReport& r, size_t max_shown, const std::string& note);

// The trials' values of `decision` against the report's metric, one point per trial (hover: the
// value and the metric), at most `max_points` (evenly sampled, said in the caption).
// REQUIRES: `decision` is one of r.decisions' names.
std::string ValueSvg(const ImportanceReport& r, const std::string& decision, size_t max_points);

}  // namespace nasforge::report
