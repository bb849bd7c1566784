// Incremental Pareto fronts: points arrive one at a time (a trial finishes) and the front is
// kept, so a query never rescans every candidate. Part of the Pareto math of core/pareto.h; all
// coordinates minimised (negate what is maximised).
//
// - Front2D: the 2-D staircase in a balanced tree. Insert is O(log n) amortised (a point is
//   removed at most once); it also keeps the area it dominates up to a reference point, so the
//   2-D hypervolume is O(1) to read and the 3-D one an O(n log n) sweep.
// - ParetoArchive: any number of objectives (2-D through Front2D; otherwise the front as a list,
//   O(front) per insert), with ids; equal points are all kept, as NonDominated keeps them.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <map>
#include <utility>
#include <vector>

namespace nasforge {

class Front2D {
 public:
  // `ref`: the hypervolume's reference point; points not better in both coordinates are still
  // kept on the front but add no area.
  explicit Front2D(std::pair<double, double> ref = {0, 0}) : ref_(ref) {}

  // Offers (x, y) for `id`. False (nothing changes) when a point of the front dominates it;
  // otherwise it joins the front (beside an equal point, with its id), the points it dominates
  // leave, and their ids are appended to `removed` when given.
  bool Insert(double x, double y, int64_t id, std::vector<int64_t>* removed = nullptr);
  // The dominated area within `ref`.
  double Area() const { return area_; }
  // Points on the front (equal points counted each).
  size_t size() const { return ids_; }
  // Ids on the front, by x ascending (ties: in insertion order).
  std::vector<int64_t> Ids() const;

 private:
  struct Step {
    double y;
    std::vector<int64_t> ids;  // equal points
  };
  double Contribution(std::map<double, Step>::const_iterator it) const;

  std::pair<double, double> ref_;
  std::map<double, Step> points_;  // x -> (y, ids): x ascending, y strictly descending
  double area_ = 0;
  size_t ids_ = 0;
};

class ParetoArchive {
 public:
  explicit ParetoArchive(size_t objectives) : m_(objectives) {}
  // Offers a point of m_ coordinates (finite). True when it is on the front afterwards.
  bool Insert(int64_t id, const std::vector<double>& point);
  // Ids on the front, ascending.
  std::vector<int64_t> Ids() const;
  size_t size() const;
  size_t objectives() const { return m_; }

 private:
  size_t m_;
  Front2D front2_;  // m_ == 2
  struct Member {
    std::vector<double> point;
    int64_t id;
  };
  std::vector<Member> members_;  // m_ != 2
};

// Exact 3-D hypervolume (all minimised) up to `ref`: a sweep along the third coordinate over an
// incremental 2-D front. O(n log n).
double Hypervolume3D(std::vector<std::array<double, 3>> points, std::array<double, 3> ref);

}  // namespace nasforge
