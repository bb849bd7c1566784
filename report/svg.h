// The pieces every SVG chart of the report library draws with: escaping, round tick values, a
// padded data range, and the plot frame (title, box, grid, ticks, axis labels).
#pragma once

#include <string>
#include <vector>

namespace nasforge::report {

// Text for SVG or HTML: & < > " escaped.
std::string XmlEscape(const std::string& s);
// About five round tick values covering [lo, hi].
std::vector<double> Ticks(double lo, double hi);
// 1.5e6 -> "1.5M", 25000 -> "25K", 0.25 -> "0.25".
std::string TickLabel(double v);

struct Range {
  double lo = 0, hi = 1;
};
// The values' span padded by 5% (a single value gets a span around it); [0, 1] when empty.
Range Span(const std::vector<double>& v);

// "<svg ...>" of a `width` x `height` chart of class `css_class` (the page's and tests' handle),
// sans-serif 12, on a white background.
std::string SvgHeader(const std::string& css_class, double width, double height);

// A chart with nothing to draw yet: its title and why (class "`css_class` empty").
std::string EmptySvg(const std::string& css_class, const std::string& title,
                     const std::string& why);

// A plot area inside a `width` x `height` picture with fixed margins, mapping data to pixels.
struct Frame {
  double width = 720, height = 480;
  double left = 80, right = 24, top = 48, bottom = 64;
  Range x, y;
  // A log-scaled x axis: `x` holds log10 of the values, X() takes the values themselves, and
  // the ticks sit at round values in log space, labelled with the values.
  bool x_log = false;
  double X(double v) const;
  double Y(double v) const;
  double plot_width() const { return width - left - right; }
  double plot_height() const { return height - top - bottom; }
  // "<svg ...>", white background, title, box, grid with tick labels, axis labels. `css_class`
  // names the chart for pages and tests.
  std::string Open(const std::string& css_class, const std::string& title,
                   const std::string& x_label, const std::string& y_label) const;
};

}  // namespace nasforge::report
