// One hyperparameter's values by index (a gene), computed on the fly: ordinal and categorical
// lists as given, integer ranges exactly or on a rounded grid, reals on a step or a linear/log
// grid (core/parameters.h says which). Internal to core/parameters.cc and its tests.
#pragma once

#include <string>

#include "nasforge/v1/nasforge.pb.h"

namespace nasforge {

inline constexpr int kDefaultRealLevels = 1024;
inline constexpr int kMaxIntegerLevels = 1024;
inline constexpr int kMaxLevels = 65536;
inline constexpr double kMaxExactInteger = 9007199254740992.0;  // 2^53

// REQUIRES: the parameter's domain is valid (ValidateParameters); `p` outlives the domain.
class ParamDomain {
 public:
  explicit ParamDomain(const v1::Parameter& p);
  int levels() const { return levels_; }
  bool ordered() const { return ordered_; }
  bool text() const { return text_; }

  double Number(int i) const;
  const std::string& Text(int i) const { return p_.categorical().values(i); }
  // The index of value `v`, -1 when it is not one of the domain's values.
  int IndexOf(const v1::ParamValue& v) const;
  int IndexOfNumber(double x) const;
  // The value nearest to x (for error messages).
  double Nearest(double x) const;
  v1::ParamValue Value(int i) const;
  // Whether a condition's value (as written) names value i.
  bool Matches(int i, const std::string& written) const;

 private:
  // The first index whose value is >= x (values are non-decreasing in the index); levels() if
  // none.
  int LowerBound(double x) const;

  const v1::Parameter& p_;
  int levels_ = 1;
  bool ordered_ = true, text_ = false, exact_ = false;
};

}  // namespace nasforge
