// The dashboard's other charts, as self-contained SVG (no scripts, no fonts to fetch; hover text
// in <title> elements): best-so-far over trials, learning curves with the early-stopping
// decisions marked, and the architecture choices against a metric. Pure functions of their
// inputs, unit-tested; callers downsample (the charts draw what they are given).
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "nasforge/v1/nasforge.pb.h"

namespace nasforge::report {

// Best-so-far: each finished trial's value (dots) and the best value up to it (a step line).
struct ProgressPoint {
  double trial = 0;  // trial number
  double value = 0;
  double best = 0;  // best value among trials up to this one
};
std::string BestSoFarSvg(const std::vector<ProgressPoint>& points, const std::string& metric,
                         bool maximize, const std::string& note);

// One trial's learning curve: (epoch, value) points; `stopped` marks the early-stopping decision
// at its last point.
struct Curve {
  int64_t trial = 0;
  std::vector<std::pair<double, double>> points;
  bool stopped = false;
  bool front = false;  // drawn on top, highlighted
};
std::string CurvesSvg(const std::vector<Curve>& curves, const std::string& metric,
                      const std::string& note);

// For one architecture choice, the metric of the trials that took each option.
struct ChoiceOption {
  std::string value;
  int64_t count = 0;
  double mean = 0, min = 0, max = 0;
  double q1 = 0, q3 = 0;  // quartiles: the bar
};
struct ChoiceStats {
  std::string choice;  // "stages.0.kernel"
  std::vector<ChoiceOption> options;
  double spread() const;  // max - min of the options' means: how much the choice matters
};
// One row per option (a bar from the first to the third quartile, a dot at the mean), choices
// grouped, ranked by spread; at most `max_choices` choices drawn.
// `note` (e.g. what was sampled) goes under the title.
std::string ChoicesSvg(std::vector<ChoiceStats> choices, const std::string& metric,
                       size_t max_choices, const std::string& note);

// The architecture's decisions flattened to (path, value) pairs: "stages.0.kernel" -> "5",
// "cells.0.op" -> "conv_3x3" (the oneof's message walked by reflection; enums by name; the
// hyperparameters are not among them).
std::vector<std::pair<std::string, std::string>> FlattenArchitecture(const v1::Architecture& a);

}  // namespace nasforge::report
