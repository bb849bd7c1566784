#include "core/trial_state.h"

#include "absl/strings/ascii.h"
#include "absl/strings/strip.h"

namespace nasforge {

bool TrialTerminal(v1::TrialState s) {
  return s == v1::TRIAL_SUCCEEDED || s == v1::TRIAL_STOPPED || s == v1::TRIAL_FAILED ||
         s == v1::TRIAL_CANCELLED;
}

bool JobTerminal(v1::JobState s) {
  return s == v1::JOB_SUCCEEDED || s == v1::JOB_FAILED || s == v1::JOB_CANCELLED;
}

const std::vector<v1::TrialState>& TrialStates() {
  static const auto* kStates = [] {
    auto* v = new std::vector<v1::TrialState>;
    for (int s = v1::TrialState_MIN; s <= v1::TrialState_MAX; ++s) {
      if (v1::TrialState_IsValid(s) && s != v1::TRIAL_STATE_UNSPECIFIED) {
        v->push_back(static_cast<v1::TrialState>(s));
      }
    }
    return v;
  }();
  return *kStates;
}

std::string TrialStateLabel(v1::TrialState s) {
  absl::string_view name = v1::TrialState_Name(s);
  absl::ConsumePrefix(&name, "TRIAL_");
  return absl::AsciiStrToLower(name);
}

namespace {
// JobCounts' field for state `s` (field number == enum value; checked by trial_state_test).
const google::protobuf::FieldDescriptor* CountField(v1::TrialState s) {
  return v1::JobCounts::descriptor()->FindFieldByNumber(static_cast<int>(s));
}
}  // namespace

int32_t CountOf(const v1::JobCounts& c, v1::TrialState s) {
  const auto* f = CountField(s);
  return f == nullptr ? 0 : c.GetReflection()->GetInt32(c, f);
}

void AddToCount(v1::JobCounts* c, v1::TrialState s, int32_t delta) {
  const auto* f = c->GetDescriptor()->FindFieldByNumber(static_cast<int>(s));
  if (f != nullptr) c->GetReflection()->SetInt32(c, f, CountOf(*c, s) + delta);
}

void AddCounts(const v1::JobCounts& from, v1::JobCounts* to) {
  for (v1::TrialState s : TrialStates()) {
    if (const auto* f = CountField(s)) {
      to->GetReflection()->SetInt32(to, f, CountOf(*to, s) + CountOf(from, s));
    }
  }
  to->set_rejected_by_cost(to->rejected_by_cost() + from.rejected_by_cost());
}

v1::JobCounts CountStates(const std::vector<int32_t>& n, const v1::JobCounts& previous) {
  v1::JobCounts c;
  c.set_rejected_by_cost(previous.rejected_by_cost());
  for (v1::TrialState s : TrialStates()) {
    if (const auto* f = CountField(s)) c.GetReflection()->SetInt32(&c, f, n[s]);
  }
  return c;
}

}  // namespace nasforge
