#include "report/pareto_plot.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "report/svg.h"

namespace nasforge::report {

std::string ParetoSvg(const std::vector<PlotPoint>& points, const PlotAxes& axes) {
  std::vector<const PlotPoint*> shown;
  std::vector<double> xs, ys;
  for (const PlotPoint& p : points) {
    if (!std::isfinite(p.x) || !std::isfinite(p.y)) continue;
    shown.push_back(&p);
    xs.push_back(p.x);
    ys.push_back(p.y);
  }
  Frame f;
  f.x = Span(xs);
  f.y = Span(ys);
  auto X = [&](double v) { return f.X(v); };
  auto Y = [&](double v) { return f.Y(v); };
  std::string s = f.Open("pareto-plot", axes.title, axes.x_label, axes.y_label);
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
                            on_front ? 1.0 : 0.55, XmlEscape(p->label));
    }
  }
  const size_t left_out = points.size() - shown.size();
  absl::StrAppendFormat(
      &s, "<text x=\"%g\" y=\"%g\" fill=\"#666\">%d candidates, %d on the front%s%s</text>\n",
      f.left, f.height - 6, shown.size(), front.size(),
      left_out ? absl::StrCat(", ", left_out, " without both values left out") : std::string(),
      axes.note.empty() ? std::string() : "; " + XmlEscape(axes.note));
  s += "</svg>\n";
  return s;
}

}  // namespace nasforge::report
