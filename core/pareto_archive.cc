#include "core/pareto_archive.h"

#include <algorithm>
#include <iterator>

#include "core/pareto.h"

namespace nasforge {

double Front2D::Contribution(std::map<double, Step>::const_iterator it) const {
  // The strip from this point's x to the next point's x (or ref), from its y up to ref.
  if (it->first >= ref_.first || it->second.y >= ref_.second) return 0;
  auto next = std::next(it);
  const double right = next == points_.end() ? ref_.first : std::min(next->first, ref_.first);
  return (right - it->first) * (ref_.second - it->second.y);
}

bool Front2D::Insert(double x, double y, int64_t id, std::vector<int64_t>* removed) {
  auto after = points_.upper_bound(x);  // first point with a larger x
  if (after != points_.begin()) {
    auto at = std::prev(after);  // the point with the largest x <= this x
    if (at->second.y <= y) {
      if (at->first == x && at->second.y == y) {  // an equal point: both stay
        at->second.ids.push_back(id);
        ++ids_;
        return true;
      }
      return false;  // dominated
    }
  }
  // The new point dominates the run starting at x whose y is not below its own (y descends
  // with x, so the run is contiguous).
  auto first = points_.lower_bound(x);
  auto last = first;
  double old_area = 0;
  while (last != points_.end() && last->second.y >= y) {
    old_area += Contribution(last);
    ids_ -= last->second.ids.size();
    if (removed != nullptr)
      removed->insert(removed->end(), last->second.ids.begin(), last->second.ids.end());
    ++last;
  }
  auto pred = first == points_.begin() ? points_.end() : std::prev(first);
  if (pred != points_.end()) old_area += Contribution(pred);
  points_.erase(first, last);
  auto it = points_.emplace_hint(last, x, Step{y, {id}});
  ++ids_;
  double new_area = Contribution(it);
  if (pred != points_.end()) new_area += Contribution(pred);
  area_ += new_area - old_area;
  return true;
}

std::vector<int64_t> Front2D::Ids() const {
  std::vector<int64_t> out;
  for (const auto& [x, s] : points_) out.insert(out.end(), s.ids.begin(), s.ids.end());
  return out;
}

bool ParetoArchive::Insert(int64_t id, const std::vector<double>& p) {
  if (m_ == 2) return front2_.Insert(p[0], p[1], id);
  for (const Member& q : members_) {
    if (Dominates(q.point, p)) return false;
  }
  members_.erase(std::remove_if(members_.begin(), members_.end(),
                                [&](const Member& q) { return Dominates(p, q.point); }),
                 members_.end());
  members_.push_back({p, id});
  return true;
}

std::vector<int64_t> ParetoArchive::Ids() const {
  std::vector<int64_t> out;
  if (m_ == 2) {
    out = front2_.Ids();
  } else {
    for (const Member& q : members_) out.push_back(q.id);
  }
  std::sort(out.begin(), out.end());
  return out;
}

size_t ParetoArchive::size() const {
  if (m_ == 2) return front2_.size();
  return members_.size();
}

double Hypervolume3D(std::vector<std::array<double, 3>> points, std::array<double, 3> ref) {
  points.erase(std::remove_if(points.begin(), points.end(),
                              [&](const std::array<double, 3>& p) {
                                return !(p[0] < ref[0] && p[1] < ref[1] && p[2] < ref[2]);
                              }),
               points.end());
  std::sort(points.begin(), points.end(), [](const auto& a, const auto& b) { return a[2] < b[2]; });
  Front2D slice({ref[0], ref[1]});
  double volume = 0;
  for (size_t i = 0; i < points.size(); ++i) {
    slice.Insert(points[i][0], points[i][1], static_cast<int64_t>(i));
    const double top = i + 1 < points.size() ? points[i + 1][2] : ref[2];
    volume += slice.Area() * (top - points[i][2]);
  }
  return volume;
}

}  // namespace nasforge
