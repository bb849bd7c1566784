#include "report/svg.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace nasforge::report {

std::string XmlEscape(const std::string& s) {
  std::string out;
  out.reserve(s.size());
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

Range Span(const std::vector<double>& v) {
  if (v.empty()) return {};
  auto [mn, mx] = std::minmax_element(v.begin(), v.end());
  Range r{*mn, *mx};
  const double pad = r.hi > r.lo ? (r.hi - r.lo) * 0.05 : std::max(std::abs(r.lo) * 0.05, 0.5);
  r.lo -= pad;
  r.hi += pad;
  return r;
}

std::string SvgHeader(const std::string& css_class, double width, double height) {
  return absl::StrFormat(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"%s\" width=\"%g\" height=\"%g\" "
      "viewBox=\"0 0 %g %g\" font-family=\"sans-serif\" font-size=\"12\">\n"
      "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n",
      css_class, width, height, width, height);
}

std::string EmptySvg(const std::string& css_class, const std::string& title,
                     const std::string& why) {
  Frame f;
  f.height = 120;
  f.bottom = 40;
  std::string s = SvgHeader(css_class + " empty", f.width, f.height);
  absl::StrAppendFormat(&s, "<text x=\"%g\" y=\"24\" font-size=\"15\">%s</text>\n", f.left,
                        XmlEscape(title));
  absl::StrAppendFormat(&s, "<text x=\"%g\" y=\"64\" fill=\"#666\">%s</text>\n", f.left,
                        XmlEscape(why));
  return s + "</svg>\n";
}

double Frame::X(double v) const {
  if (x_log) v = std::log10(v);
  return left + (v - x.lo) / (x.hi - x.lo) * plot_width();
}
double Frame::Y(double v) const {
  return top + plot_height() - (v - y.lo) / (y.hi - y.lo) * plot_height();
}

std::string Frame::Open(const std::string& css_class, const std::string& title,
                        const std::string& x_label, const std::string& y_label) const {
  const double pw = plot_width(), ph = plot_height();
  std::string s = SvgHeader(css_class, width, height);
  absl::StrAppendFormat(&s, "<text x=\"%g\" y=\"24\" font-size=\"15\">%s</text>\n", left,
                        XmlEscape(title));
  absl::StrAppendFormat(&s,
                        "<rect x=\"%g\" y=\"%g\" width=\"%g\" height=\"%g\" fill=\"none\" "
                        "stroke=\"#444\"/>\n",
                        left, top, pw, ph);
  for (double t : Ticks(x.lo, x.hi)) {
    const double v = x_log ? std::pow(10, t) : t;  // t is where the tick sits, v what it says
    absl::StrAppendFormat(&s,
                          "<line x1=\"%.1f\" y1=\"%g\" x2=\"%.1f\" y2=\"%g\" stroke=\"#eee\"/>"
                          "<text x=\"%.1f\" y=\"%g\" text-anchor=\"middle\">%s</text>\n",
                          X(v), top, X(v), top + ph, X(v), top + ph + 16,
                          x_log ? absl::StrFormat("%.3g", v) : TickLabel(v));
  }
  for (double t : Ticks(y.lo, y.hi)) {
    absl::StrAppendFormat(&s,
                          "<line x1=\"%g\" y1=\"%.1f\" x2=\"%g\" y2=\"%.1f\" stroke=\"#eee\"/>"
                          "<text x=\"%g\" y=\"%.1f\" text-anchor=\"end\">%s</text>\n",
                          left, Y(t), left + pw, Y(t), left - 6, Y(t) + 4, TickLabel(t));
  }
  absl::StrAppendFormat(&s, "<text x=\"%g\" y=\"%g\" text-anchor=\"middle\">%s</text>\n",
                        left + pw / 2, height - 24, XmlEscape(x_label));
  absl::StrAppendFormat(&s,
                        "<text x=\"18\" y=\"%g\" text-anchor=\"middle\" "
                        "transform=\"rotate(-90 18 %g)\">%s</text>\n",
                        top + ph / 2, top + ph / 2, XmlEscape(y_label));
  return s;
}

}  // namespace nasforge::report
