#include "core/param_domain.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"

namespace nasforge {
namespace {

// Rounds to 12 significant digits: grid values print as written (0.3, not 0.30000000000000004).
double Clean(double x) {
  if (x == 0 || !std::isfinite(x)) return x;
  double out = x;
  (void)absl::SimpleAtod(absl::StrFormat("%.12g", x), &out);
  return out;
}

}  // namespace

ParamDomain::ParamDomain(const v1::Parameter& p) : p_(p) {
  switch (p.domain_case()) {
    case v1::Parameter::kReal: {
      const auto& r = p.real();
      if (r.step() > 0) {
        levels_ = static_cast<int>(std::floor((r.high() - r.low()) / r.step() + 1e-9)) + 1;
      } else {
        levels_ = r.levels() > 0 ? r.levels() : kDefaultRealLevels;
      }
      break;
    }
    case v1::Parameter::kInteger: {
      const auto& n = p.integer();
      const double count = static_cast<double>(n.high()) - static_cast<double>(n.low()) + 1;
      exact_ = !n.log() && count <= kMaxIntegerLevels;
      levels_ = static_cast<int>(std::min<double>(count, kMaxIntegerLevels));
      break;
    }
    case v1::Parameter::kCategorical:
      levels_ = p.categorical().values_size();
      ordered_ = false;
      text_ = true;
      break;
    case v1::Parameter::kOrdinal:
      levels_ = p.ordinal().values_size();
      break;
    default:
      levels_ = 1;
  }
  levels_ = std::max(levels_, 1);
}

double ParamDomain::Number(int i) const {
  const double t = levels_ > 1 ? static_cast<double>(i) / (levels_ - 1) : 0.0;
  switch (p_.domain_case()) {
    case v1::Parameter::kReal: {
      const auto& r = p_.real();
      if (r.step() > 0) return Clean(r.low() + i * r.step());
      if (i == 0) return r.low();
      if (i == levels_ - 1) return r.high();
      if (r.log()) {
        return Clean(std::exp(std::log(r.low()) + t * (std::log(r.high()) - std::log(r.low()))));
      }
      return Clean(r.low() + t * (r.high() - r.low()));
    }
    case v1::Parameter::kInteger: {
      const auto& n = p_.integer();
      const double lo = static_cast<double>(n.low()), hi = static_cast<double>(n.high());
      if (exact_) return lo + i;
      if (n.log()) return std::round(std::exp(std::log(lo) + t * (std::log(hi) - std::log(lo))));
      return std::round(lo + t * (hi - lo));
    }
    case v1::Parameter::kOrdinal:
      return p_.ordinal().values(i);
    default:
      return 0;
  }
}

int ParamDomain::LowerBound(double x) const {
  int lo = 0, hi = levels_;
  while (lo < hi) {
    const int mid = lo + (hi - lo) / 2;
    if (Number(mid) < x) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  return lo;
}

int ParamDomain::IndexOf(const v1::ParamValue& v) const {
  if (!text_) return IndexOfNumber(v.number());
  for (int i = 0; i < levels_; ++i) {
    if (Text(i) == v.text()) return i;
  }
  return -1;
}

int ParamDomain::IndexOfNumber(double x) const {
  if (p_.domain_case() == v1::Parameter::kOrdinal) {
    for (int i = 0; i < levels_; ++i) {
      if (Number(i) == x) return i;
    }
    return -1;
  }
  const int i = LowerBound(x);
  return i < levels_ && Number(i) == x ? i : -1;
}

double ParamDomain::Nearest(double x) const {
  int i = std::min(LowerBound(x), levels_ - 1);
  if (i > 0 && std::abs(Number(i - 1) - x) < std::abs(Number(i) - x)) --i;
  return Number(i);
}

v1::ParamValue ParamDomain::Value(int i) const {
  v1::ParamValue v;
  v.set_name(p_.name());
  if (text_) {
    v.set_text(Text(i));
  } else {
    v.set_number(Number(i));
  }
  return v;
}

bool ParamDomain::Matches(int i, const std::string& written) const {
  if (text_) return Text(i) == written;
  double x;
  return absl::SimpleAtod(written, &x) && Number(i) == x;
}

}  // namespace nasforge
