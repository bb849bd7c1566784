#include "report/charts.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/message.h"
#include "report/svg.h"

namespace nasforge::report {
namespace {

std::string Caption(const Frame& f, const std::string& text) {
  return absl::StrFormat("<text x=\"%g\" y=\"%g\" fill=\"#666\">%s</text>\n", f.left, f.height - 6,
                         XmlEscape(text));
}

void Flatten(const google::protobuf::Message& m, const std::string& prefix,
             std::vector<std::pair<std::string, std::string>>& out) {
  using google::protobuf::FieldDescriptor;
  const auto* refl = m.GetReflection();
  std::vector<const FieldDescriptor*> fields;
  refl->ListFields(m, &fields);
  for (const FieldDescriptor* fd : fields) {
    const std::string name = prefix.empty() ? fd->name() : absl::StrCat(prefix, ".", fd->name());
    auto scalar = [&](int i) -> std::string {
      const bool rep = fd->is_repeated();
      switch (fd->cpp_type()) {
        case FieldDescriptor::CPPTYPE_INT32:
          return absl::StrCat(rep ? refl->GetRepeatedInt32(m, fd, i) : refl->GetInt32(m, fd));
        case FieldDescriptor::CPPTYPE_INT64:
          return absl::StrCat(rep ? refl->GetRepeatedInt64(m, fd, i) : refl->GetInt64(m, fd));
        case FieldDescriptor::CPPTYPE_UINT32:
          return absl::StrCat(rep ? refl->GetRepeatedUInt32(m, fd, i) : refl->GetUInt32(m, fd));
        case FieldDescriptor::CPPTYPE_UINT64:
          return absl::StrCat(rep ? refl->GetRepeatedUInt64(m, fd, i) : refl->GetUInt64(m, fd));
        case FieldDescriptor::CPPTYPE_DOUBLE:
          return absl::StrFormat("%g",
                                 rep ? refl->GetRepeatedDouble(m, fd, i) : refl->GetDouble(m, fd));
        case FieldDescriptor::CPPTYPE_FLOAT:
          return absl::StrFormat("%g",
                                 rep ? refl->GetRepeatedFloat(m, fd, i) : refl->GetFloat(m, fd));
        case FieldDescriptor::CPPTYPE_BOOL:
          return (rep ? refl->GetRepeatedBool(m, fd, i) : refl->GetBool(m, fd)) ? "true" : "false";
        case FieldDescriptor::CPPTYPE_ENUM:
          return (rep ? refl->GetRepeatedEnum(m, fd, i) : refl->GetEnum(m, fd))->name();
        case FieldDescriptor::CPPTYPE_STRING:
          return rep ? refl->GetRepeatedString(m, fd, i) : refl->GetString(m, fd);
        default:
          return "";
      }
    };
    if (fd->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
      if (fd->is_repeated()) {
        for (int i = 0; i < refl->FieldSize(m, fd); ++i) {
          Flatten(refl->GetRepeatedMessage(m, fd, i), absl::StrCat(name, ".", i), out);
        }
      } else {
        Flatten(refl->GetMessage(m, fd), name, out);
      }
    } else if (fd->is_repeated()) {
      for (int i = 0; i < refl->FieldSize(m, fd); ++i) {
        out.emplace_back(absl::StrCat(name, ".", i), scalar(i));
      }
    } else if (fd->cpp_type() == FieldDescriptor::CPPTYPE_STRING && fd->name() == "cell" &&
               absl::StartsWith(scalar(0), "|")) {
      // A NAS-Bench-201 cell string: one choice per edge ("|op~0|+|op~0|op~1|+...").
      int edge = 0;
      for (absl::string_view node : absl::StrSplit(scalar(0), '+')) {
        for (absl::string_view op : absl::StrSplit(node, '|', absl::SkipEmpty())) {
          out.emplace_back(absl::StrCat(name, ".edge", edge++),
                           std::string(op.substr(0, op.find('~'))));
        }
      }
    } else {
      out.emplace_back(name, scalar(0));
    }
  }
}

}  // namespace

std::string BestSoFarSvg(const std::vector<ProgressPoint>& points, const std::string& metric,
                         bool maximize, const std::string& note) {
  const std::string title = absl::StrCat("Best ", metric, " so far");
  std::vector<double> xs, ys;
  for (const auto& p : points) {
    if (!std::isfinite(p.value) || !std::isfinite(p.best)) continue;
    xs.push_back(p.trial);
    ys.push_back(p.value);
    ys.push_back(p.best);
  }
  if (xs.empty())
    return EmptySvg("progress-plot", title, "no finished trial with " + metric + " yet");
  Frame f;
  f.height = 360;
  f.x = Span(xs);
  f.y = Span(ys);
  std::string s =
      f.Open("progress-plot", title, "trial", absl::StrCat(metric, maximize ? " (max)" : " (min)"));
  std::string path;
  double last_y = NAN;
  for (const auto& p : points) {
    if (!std::isfinite(p.value) || !std::isfinite(p.best)) continue;
    absl::StrAppendFormat(&s,
                          "<circle class=\"trial-value\" cx=\"%.1f\" cy=\"%.1f\" r=\"2\" "
                          "fill=\"#999\"><title>trial %g: %s %.6g (best %.6g)</title></circle>\n",
                          f.X(p.trial), f.Y(p.value), p.trial, XmlEscape(metric), p.value, p.best);
    const double y = f.Y(p.best);
    if (path.empty()) {
      absl::StrAppendFormat(&path, "%.1f,%.1f", f.X(p.trial), y);
    } else {
      absl::StrAppendFormat(&path, " %.1f,%.1f %.1f,%.1f", f.X(p.trial), last_y, f.X(p.trial), y);
    }
    last_y = y;
  }
  absl::StrAppendFormat(&s,
                        "<polyline class=\"best-line\" points=\"%s\" fill=\"none\" "
                        "stroke=\"#d62728\" stroke-width=\"2\"/>\n",
                        path);
  s += Caption(f, note.empty() ? absl::StrCat(xs.size(), " finished trials") : note);
  return s + "</svg>\n";
}

std::string CurvesSvg(const std::vector<Curve>& curves, const std::string& metric,
                      const std::string& note) {
  const std::string title = absl::StrCat("Learning curves (", metric, ")");
  std::vector<double> xs, ys;
  for (const auto& c : curves) {
    for (const auto& [x, y] : c.points) {
      if (!std::isfinite(x) || !std::isfinite(y)) continue;
      xs.push_back(x);
      ys.push_back(y);
    }
  }
  if (xs.empty()) return EmptySvg("curves-plot", title, "no trial has reported an epoch yet");
  Frame f;
  f.height = 360;
  f.x = Span(xs);
  f.y = Span(ys);
  std::string s = f.Open("curves-plot", title, "epoch", metric);
  int stopped = 0;
  for (bool front : {false, true}) {
    for (const auto& c : curves) {
      if (c.front != front) continue;
      std::string path;
      double lx = NAN, ly = NAN;
      for (const auto& [x, y] : c.points) {
        if (!std::isfinite(x) || !std::isfinite(y)) continue;
        absl::StrAppendFormat(&path, "%s%.1f,%.1f", path.empty() ? "" : " ", f.X(x), f.Y(y));
        lx = x;
        ly = y;
      }
      if (path.empty()) continue;
      const char* color = front ? "#d62728" : c.stopped ? "#bbb" : "#1f77b4";
      absl::StrAppendFormat(&s,
                            "<polyline class=\"curve%s\" points=\"%s\" fill=\"none\" "
                            "stroke=\"%s\" stroke-width=\"%g\"><title>trial %d%s</title>"
                            "</polyline>\n",
                            front ? " front" : "", path, color, front ? 2.0 : 1.0, c.trial,
                            c.stopped ? ": stopped early" : "");
      if (c.stopped) {
        ++stopped;
        const double cx = f.X(lx), cy = f.Y(ly);
        absl::StrAppendFormat(&s,
                              "<path class=\"stop-mark\" d=\"M%.1f %.1fL%.1f %.1fM%.1f %.1fL%.1f "
                              "%.1f\" stroke=\"#ff7f0e\" stroke-width=\"2\"><title>trial %d "
                              "stopped early at epoch %g (%s %.6g)</title></path>\n",
                              cx - 4, cy - 4, cx + 4, cy + 4, cx - 4, cy + 4, cx + 4, cy - 4,
                              c.trial, lx, XmlEscape(metric), ly);
      }
    }
  }
  s += Caption(
      f, absl::StrCat(curves.size(), " curves, ", stopped, " stopped early (x); red: on the front",
                      note.empty() ? "" : "; ", note));
  return s + "</svg>\n";
}

double ChoiceStats::spread() const {
  double lo = INFINITY, hi = -INFINITY;
  for (const auto& o : options) {
    lo = std::min(lo, o.mean);
    hi = std::max(hi, o.mean);
  }
  return options.empty() ? 0 : hi - lo;
}

std::string ChoicesSvg(std::vector<ChoiceStats> choices, const std::string& metric,
                       size_t max_choices, const std::string& note) {
  const std::string title = absl::StrCat("Architecture choices against ", metric);
  if (choices.empty()) {
    return EmptySvg("choices-plot", title, "no finished trial with " + metric + " yet");
  }
  std::stable_sort(choices.begin(), choices.end(), [](const ChoiceStats& a, const ChoiceStats& b) {
    return a.spread() > b.spread();
  });
  const size_t total = choices.size();
  if (choices.size() > max_choices) choices.resize(max_choices);
  std::vector<double> xs;
  size_t rows = 0;
  for (const auto& c : choices) {
    rows += c.options.size() + 1;
    for (const auto& o : c.options) {
      xs.push_back(o.q1);
      xs.push_back(o.q3);
      xs.push_back(o.mean);
    }
  }
  constexpr double kRow = 16;
  Frame f;
  f.left = 230;
  f.top = 40;
  f.bottom = 56;
  f.height = f.top + f.bottom + kRow * static_cast<double>(rows);
  f.x = Span(xs);
  f.y = {0, static_cast<double>(rows)};
  std::string s =
      SvgHeader("choices-plot", f.width, f.height) +
      absl::StrFormat("<text x=\"12\" y=\"24\" font-size=\"15\">%s</text>\n", XmlEscape(title));
  if (!note.empty()) {
    absl::StrAppendFormat(&s, "<text x=\"12\" y=\"38\" fill=\"#666\">%s</text>\n", XmlEscape(note));
  }
  const double bottom = f.top + kRow * static_cast<double>(rows);
  for (double t : Ticks(f.x.lo, f.x.hi)) {
    absl::StrAppendFormat(&s,
                          "<line x1=\"%.1f\" y1=\"%g\" x2=\"%.1f\" y2=\"%g\" stroke=\"#eee\"/>"
                          "<text x=\"%.1f\" y=\"%g\" text-anchor=\"middle\">%s</text>\n",
                          f.X(t), f.top, f.X(t), bottom, f.X(t), bottom + 16, TickLabel(t));
  }
  double y = f.top;
  for (const auto& c : choices) {
    y += kRow;
    absl::StrAppendFormat(&s,
                          "<text class=\"choice\" x=\"12\" y=\"%.1f\" font-weight=\"bold\">%s"
                          "</text>\n",
                          y - 4, XmlEscape(c.choice));
    for (const auto& o : c.options) {
      y += kRow;
      const double cy = y - 8;
      absl::StrAppendFormat(
          &s,
          "<g class=\"option\"><title>%s = %s: %d trials, %s mean %.6g, quartiles %.6g - %.6g, "
          "min %.6g, max %.6g</title><text x=\"24\" y=\"%.1f\">%s (%d)</text>"
          "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#9ecae1\" "
          "stroke-width=\"6\"/><circle cx=\"%.1f\" cy=\"%.1f\" r=\"4\" fill=\"#1f77b4\"/></g>\n",
          XmlEscape(c.choice), XmlEscape(o.value), o.count, XmlEscape(metric), o.mean, o.q1, o.q3,
          o.min, o.max, y - 4, XmlEscape(o.value), o.count, f.X(o.q1), cy, f.X(o.q3), cy,
          f.X(o.mean), cy);
    }
  }
  s += absl::StrFormat(
      "<text x=\"12\" y=\"%g\" fill=\"#666\">bar: quartiles, dot: mean; %d of %d varying "
      "choices, those that move %s most first</text>\n",
      f.height - 8, choices.size(), total, XmlEscape(metric));
  return s + "</svg>\n";
}

std::vector<std::pair<std::string, std::string>> FlattenArchitecture(const v1::Architecture& a) {
  std::vector<std::pair<std::string, std::string>> out;
  const auto* refl = a.GetReflection();
  std::vector<const google::protobuf::FieldDescriptor*> fields;
  refl->ListFields(a, &fields);
  for (const auto* fd : fields) {
    // The kind's message; the hyperparameters (params) have their own plots.
    if (fd->cpp_type() == google::protobuf::FieldDescriptor::CPPTYPE_MESSAGE &&
        fd->containing_oneof() != nullptr) {
      Flatten(refl->GetMessage(a, fd), "", out);
    }
  }
  return out;
}

}  // namespace nasforge::report
