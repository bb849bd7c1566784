// `nasforge pareto JOB --plot FILE.svg`: a scatter of every candidate in two objectives with the
// Pareto front highlighted and joined, hover text per point (an SVG <title>), axes with ticks.
// Self-contained SVG (no fonts or scripts to fetch), so a report or a browser shows it offline.
// A pure function of its points, unit-tested.
#pragma once

#include <string>
#include <vector>

namespace nasforge::report {

struct PlotPoint {
  double x = 0, y = 0;
  bool front = false;
  std::string label;  // hover text: trial, values, architecture
};

struct PlotAxes {
  std::string title;
  std::string x_label, y_label;  // e.g. "params (min)"
  std::string note;              // appended to the caption, e.g. "2,000 of 100,000 shown"
};

// Points with a non-finite coordinate are left out (counted in the caption).
std::string ParetoSvg(const std::vector<PlotPoint>& points, const PlotAxes& axes);

}  // namespace nasforge::report
