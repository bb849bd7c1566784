#include "cli/pareto_plot.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace nasforge::cli {
namespace {

constexpr double kWidth = 720, kHeight = 480;
constexpr double kLeft = 80, kRight = 24, kTop = 48, kBottom = 64;

std::string Escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

// About five round tick values covering [lo, hi].
std::vector<double> Ticks(double lo, double hi) {
  const double span = hi - lo;
  const double raw = span / 5;
  const double mag = std::pow(10, std::floor(std::log10(raw)));
  double step = mag;
  for (double m : {1.0, 2.0, 2.5, 5.0, 10.0}) {
    step = m * mag;
    if (span / step <= 6) break;
  }
  std::vector<double> out;
  for (double v = std::ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) {
    out.push_back(std::abs(v) < step * 1e-9 ? 0 : v);
  }
  return out;
}

std::string TickLabel(double v) {
  const double a = std::abs(v);
  if (a >= 1e9) return absl::StrFormat("%gG", v / 1e9);
  if (a >= 1e6) return absl::StrFormat("%gM", v / 1e6);
  if (a >= 1e4) return absl::StrFormat("%gK", v / 1e3);
  return absl::StrFormat("%g", v);
}

struct Range {
  double lo = 0, hi = 1;
};

Range Span(const std::vector<double>& v) {
  if (v.empty()) return {};
  auto [mn, mx] = std::minmax_element(v.begin(), v.end());
  Range r{*mn, *mx};
  const double pad = r.hi > r.lo ? (r.hi - r.lo) * 0.05 : std::max(std::abs(r.lo) * 0.05, 0.5);
  r.lo -= pad;
  r.hi += pad;
  return r;
}

}  // namespace

std::string ParetoSvg(const std::vector<PlotPoint>& points, const PlotAxes& axes) {
  std::vector<const PlotPoint*> shown;
  std::vector<double> xs, ys;
  for (const PlotPoint& p : points) {
    if (!std::isfinite(p.x) || !std::isfinite(p.y)) continue;
    shown.push_back(&p);
    xs.push_back(p.x);
    ys.push_back(p.y);
  }
  const Range rx = Span(xs), ry = Span(ys);
  const double pw = kWidth - kLeft - kRight, ph = kHeight - kTop - kBottom;
  auto X = [&](double v) { return kLeft + (v - rx.lo) / (rx.hi - rx.lo) * pw; };
  auto Y = [&](double v) { return kTop + ph - (v - ry.lo) / (ry.hi - ry.lo) * ph; };
  std::string s = absl::StrFormat(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%g\" height=\"%g\" viewBox=\"0 0 %g %g\" "
      "font-family=\"sans-serif\" font-size=\"12\">\n"
      "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n",
      kWidth, kHeight, kWidth, kHeight);
  absl::StrAppendFormat(&s, "<text x=\"%g\" y=\"24\" font-size=\"15\">%s</text>\n", kLeft,
                        Escape(axes.title));
  // Axes, grid and ticks.
  absl::StrAppendFormat(&s,
                        "<rect x=\"%g\" y=\"%g\" width=\"%g\" height=\"%g\" fill=\"none\" "
                        "stroke=\"#444\"/>\n",
                        kLeft, kTop, pw, ph);
  for (double t : Ticks(rx.lo, rx.hi)) {
    absl::StrAppendFormat(&s,
                          "<line x1=\"%.1f\" y1=\"%g\" x2=\"%.1f\" y2=\"%g\" stroke=\"#eee\"/>"
                          "<text x=\"%.1f\" y=\"%g\" text-anchor=\"middle\">%s</text>\n",
                          X(t), kTop, X(t), kTop + ph, X(t), kTop + ph + 16, TickLabel(t));
  }
  for (double t : Ticks(ry.lo, ry.hi)) {
    absl::StrAppendFormat(&s,
                          "<line x1=\"%g\" y1=\"%.1f\" x2=\"%g\" y2=\"%.1f\" stroke=\"#eee\"/>"
                          "<text x=\"%g\" y=\"%.1f\" text-anchor=\"end\">%s</text>\n",
                          kLeft, Y(t), kLeft + pw, Y(t), kLeft - 6, Y(t) + 4, TickLabel(t));
  }
  absl::StrAppendFormat(&s, "<text x=\"%g\" y=\"%g\" text-anchor=\"middle\">%s</text>\n",
                        kLeft + pw / 2, kHeight - 24, Escape(axes.x_label));
  absl::StrAppendFormat(&s,
                        "<text x=\"18\" y=\"%g\" text-anchor=\"middle\" "
                        "transform=\"rotate(-90 18 %g)\">%s</text>\n",
                        kTop + ph / 2, kTop + ph / 2, Escape(axes.y_label));
  // The front joined in x order, then every point (front members on top).
  std::vector<const PlotPoint*> front;
  for (const PlotPoint* p : shown) {
    if (p->front) front.push_back(p);
  }
  std::sort(front.begin(), front.end(),
            [](const PlotPoint* a, const PlotPoint* b) { return a->x < b->x; });
  if (front.size() > 1) {
    std::string path;
    for (const PlotPoint* p : front) {
      absl::StrAppendFormat(&path, "%s%.1f,%.1f", path.empty() ? "" : " ", X(p->x), Y(p->y));
    }
    absl::StrAppendFormat(&s,
                          "<polyline class=\"front-line\" points=\"%s\" fill=\"none\" "
                          "stroke=\"#d62728\" stroke-width=\"1.5\"/>\n",
                          path);
  }
  for (bool on_front : {false, true}) {
    for (const PlotPoint* p : shown) {
      if (p->front != on_front) continue;
      absl::StrAppendFormat(&s,
                            "<circle class=\"%s\" cx=\"%.1f\" cy=\"%.1f\" r=\"%g\" fill=\"%s\" "
                            "fill-opacity=\"%g\"><title>%s</title></circle>\n",
                            on_front ? "front" : "candidate", X(p->x), Y(p->y),
                            on_front ? 4.5 : 3.0, on_front ? "#d62728" : "#1f77b4",
                            on_front ? 1.0 : 0.55, Escape(p->label));
    }
  }
  const size_t left_out = points.size() - shown.size();
  absl::StrAppendFormat(
      &s, "<text x=\"%g\" y=\"%g\" fill=\"#666\">%d candidates, %d on the front%s</text>\n", kLeft,
      kHeight - 6, shown.size(), front.size(),
      left_out ? absl::StrCat(", ", left_out, " without both values left out") : std::string());
  s += "</svg>\n";
  return s;
}

}  // namespace nasforge::cli
