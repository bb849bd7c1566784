#include "controller/metric_columns.h"

namespace nasforge {

void MetricColumns::Add(const v1::Trial& t) {
  if (t.state() != v1::TRIAL_SUCCEEDED && t.state() != v1::TRIAL_STOPPED) return;
  if (t.id() < 0) return;
  const size_t n = static_cast<size_t>(t.id()) + 1;
  if (states_.size() < n) states_.resize(n, v1::TRIAL_STATE_UNSPECIFIED);
  states_[t.id()] = static_cast<uint8_t>(t.state());
  for (const auto& [name, value] : t.metrics()) {
    std::vector<double>& column = columns_[name];
    if (column.size() < n) column.resize(n, std::numeric_limits<double>::quiet_NaN());
    column[t.id()] = value;
  }
}

}  // namespace nasforge
