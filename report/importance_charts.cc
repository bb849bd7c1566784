#include "report/importance_charts.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "report/svg.h"

namespace nasforge::report {

std::string ImportanceSvg(const ImportanceReport& r, size_t max_shown, const std::string& note) {
  const std::string title = absl::StrCat("What matters for ", r.metric, " (", r.trials, " trials)");
  const size_t n = std::min(max_shown, r.decisions.size());
  constexpr double kRow = 20;
  Frame f;
  f.left = 230;
  f.right = 260;
  f.top = 44;
  f.bottom = 40;
  f.height = f.top + f.bottom + kRow * static_cast<double>(std::max<size_t>(n, 1));
  f.x = {0, 1};
  std::string s =
      SvgHeader("importance-plot", f.width, f.height) +
      absl::StrFormat("<text x=\"12\" y=\"22\" font-size=\"15\">%s</text>\n", XmlEscape(title));
  absl::StrAppendFormat(&s, "<text x=\"12\" y=\"38\" fill=\"#666\">%s</text>\n",
                        XmlEscape(note.empty() ? "share of the variance each decision explains "
                                                 "(first-order functional ANOVA)"
                                               : note));
  for (size_t i = 0; i < n; ++i) {
    const DecisionImportance& d = r.decisions[i];
    const double y = f.top + kRow * static_cast<double>(i);
    const double w = std::max(1.0, d.importance * f.plot_width());
    absl::StrAppendFormat(
        &s,
        "<g class=\"bar\" data-decision=\"%s\"><title>%s: %.1f%% of the explained variance, %d "
        "trials; best: %s</title><text x=\"12\" y=\"%.1f\">%s</text><rect x=\"%g\" y=\"%.1f\" "
        "width=\"%.1f\" height=\"%g\" fill=\"#1f77b4\"/><text x=\"%.1f\" y=\"%.1f\">%.0f%% "
        "(best %s)</text></g>\n",
        XmlEscape(d.name), XmlEscape(d.name), 100 * d.importance, d.observations, XmlEscape(d.best),
        y + 14, XmlEscape(d.name), f.left, y + 3, w, kRow - 6, f.left + w + 6, y + 14,
        100 * d.importance, XmlEscape(d.best));
  }
  return s + "</svg>\n";
}

std::string ValueSvg(const ImportanceReport& r, const std::string& decision, size_t max_points) {
  const DecisionImportance* d = nullptr;
  for (const auto& x : r.decisions) {
    if (x.name == decision) d = &x;
  }
  std::vector<const ImportancePoint*> all, pts;
  for (const auto& p : r.points) {
    if (p.decision == decision) all.push_back(&p);
  }
  const size_t k = std::min(all.size(), std::max<size_t>(max_points, 1));
  for (size_t j = 0; j < k; ++j) pts.push_back(all[j * all.size() / k]);
  Frame f;
  f.width = 420;
  f.height = 300;
  f.left = 64;
  f.bottom = 56;
  std::vector<double> xs, ys;
  std::map<std::string, int> column;  // categories: value -> column, in first-seen order
  std::vector<std::string> names;
  const bool ordered = d != nullptr && d->ordered;
  bool log = ordered && d->log;
  for (const auto* p : pts) {
    ys.push_back(p->y);
    if (ordered) {
      log = log && p->x > 0;
      xs.push_back(p->x);
    } else if (column.emplace(p->label, static_cast<int>(names.size())).second) {
      names.push_back(p->label);
    }
  }
  f.y = Span(ys);
  if (ordered) {
    if (log) {
      for (double& x : xs) x = std::log10(x);
    }
    f.x = Span(xs);
    f.x_log = log;
  } else {
    f.x = {-0.5, std::max(1.0, static_cast<double>(names.size())) - 0.5};
  }
  const std::string title = absl::StrCat(decision, " against ", r.metric);
  std::string s = f.Open(absl::StrCat("value-plot", log ? " log-x" : ""), title,
                         absl::StrCat(decision, log ? " (log scale)" : ""), r.metric);
  if (!ordered) {  // the category names under their columns (Open's ticks are numbers)
    s += absl::StrFormat("<rect x=\"%g\" y=\"%g\" width=\"%g\" height=\"18\" fill=\"white\"/>",
                         f.left - 30, f.top + f.plot_height() + 2, f.plot_width() + 60);
    for (size_t i = 0; i < names.size(); ++i) {
      absl::StrAppendFormat(&s,
                            "<text class=\"category\" x=\"%.1f\" y=\"%g\" "
                            "text-anchor=\"middle\">%s</text>\n",
                            f.X(static_cast<double>(i)), f.top + f.plot_height() + 16,
                            XmlEscape(names[i]));
    }
  }
  for (const auto* p : pts) {
    const double x = ordered ? f.X(p->x) : f.X(column.at(p->label));
    absl::StrAppendFormat(&s,
                          "<circle class=\"point\" cx=\"%.1f\" cy=\"%.1f\" r=\"3\" "
                          "fill=\"#1f77b4\" fill-opacity=\"0.6\"><title>%s = %s: %s %.6g</title>"
                          "</circle>\n",
                          x, f.Y(p->y), XmlEscape(decision), XmlEscape(p->label),
                          XmlEscape(r.metric), p->y);
  }
  if (pts.size() < all.size()) {
    absl::StrAppendFormat(&s,
                          "<text x=\"%g\" y=\"%g\" fill=\"#666\">%d of %d trials, evenly "
                          "sampled</text>\n",
                          f.left, f.height - 6, pts.size(), all.size());
  }
  return s + "</svg>\n";
}

}  // namespace nasforge::report
