// JobManager: the snapshot behind the per-job and fleet gauges (controller/job_metrics.h).
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <set>
#include <string>

#include "controller/job_manager.h"
#include "controller/job_manager_util.h"
#include "core/pareto.h"
#include "core/pareto_archive.h"
#include "core/trial_state.h"

namespace nasforge {

using namespace job_manager_internal;  // NOLINT: this class's own helpers

namespace {

// The hypervolume reference of objective k in minimised coordinates (see Objective.reference).
double Reference(const v1::JobSpec& spec, int k, const std::vector<double>& anchor) {
  const v1::Objective& o = spec.objectives(k);
  const bool max = o.direction() == v1::MAXIMIZE;
  if (o.has_reference()) return max ? -o.reference() : o.reference();
  if (max) return 0;
  for (const v1::Constraint& c : spec.constraints()) {
    if (c.metric() == o.metric() && c.has_upper()) return c.upper();
  }
  const double v = anchor.empty() ? 0 : anchor[k];
  return v + std::max(std::abs(v), 1.0);
}

}  // namespace

JobMetricsSnapshot JobManager::MetricsSnapshot() const {
  JobMetricsSnapshot s;
  std::map<std::string, int> held = leases_.CountByWorker();
  absl::ReaderMutexLock l(&mu_);
  for (const auto& [id, js] : jobs_) {
    if (js->job.state() != v1::JOB_RUNNING) continue;
    JobMetricsSnapshot::Job j;
    j.id = id;
    for (v1::TrialState st : TrialStates()) j.trials[st] = CountOf(js->job.counts(), st);
    const v1::JobSpec& spec = js->job.spec();
    j.budget_trials = spec.budget().max_trials();
    const absl::Time progress =
        std::max(js->last_finish, js->job.has_create_time() ? FromProto(js->job.create_time())
                                                            : absl::InfinitePast());
    j.last_progress_unix_seconds = absl::ToDoubleSeconds(progress - absl::UnixEpoch());
    const int m = spec.objectives_size();
    if (js->front != nullptr && m > 0 && js->front->size() > 0) {
      std::vector<int64_t> ids = js->front->Ids();
      j.front_size = static_cast<int64_t>(ids.size());
      // Minimised coordinates of the front, as IndexFinished made them.
      std::vector<std::vector<double>> points;
      points.reserve(ids.size());
      for (int64_t tid : ids) {
        const v1::Trial& t = js->trials[tid];
        std::vector<double> p(m);
        for (int k = 0; k < m; ++k) {
          const double v = t.metrics().at(spec.objectives(k).metric());
          p[k] = spec.objectives(k).direction() == v1::MAXIMIZE ? -v : v;
        }
        points.push_back(std::move(p));
      }
      for (int k = 0; k < m; ++k) {
        double b = points[0][k];
        for (const auto& p : points) b = std::min(b, p[k]);
        j.best.emplace_back(spec.objectives(k).metric(),
                            spec.objectives(k).direction() == v1::MAXIMIZE ? -b : b);
      }
      if (m == 2 || m == 3) {
        std::array<double, 3> ref{};
        for (int k = 0; k < m; ++k) ref[k] = Reference(spec, k, js->anchor);
        if (m == 2) {
          std::vector<std::pair<double, double>> p2;
          for (const auto& p : points) p2.emplace_back(p[0], p[1]);
          j.hypervolume = Hypervolume2D(std::move(p2), {ref[0], ref[1]});
        } else {
          std::vector<std::array<double, 3>> p3;
          for (const auto& p : points) p3.push_back({p[0], p[1], p[2]});
          j.hypervolume = Hypervolume3D(std::move(p3), ref);
        }
      }
    }
    s.jobs.push_back(std::move(j));
  }
  // Workers: live (busy or idle) or lost within the last hour; profiles capped.
  const absl::Time live_cutoff = workers_.LiveCutoff();
  const absl::Time gone_cutoff = clock_->Steady() - absl::Hours(1);
  std::set<std::string> profiles;
  for (const auto& [w, seen] : workers_.All()) {
    if (seen < gone_cutoff) continue;
    const char* state = seen < live_cutoff ? "lost" : held.count(w.id()) ? "busy" : "idle";
    std::string profile = w.hardware().name();
    if (!profiles.count(profile)) {
      if (profiles.size() >= kMaxProfiles) {
        profile = "other";
      } else {
        profiles.insert(profile);
      }
    }
    ++s.workers[{profile, state}];
  }
  return s;
}

}  // namespace nasforge
