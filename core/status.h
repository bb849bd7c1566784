// Status helpers. Debian 12's abseil (20220623) predates ABSL_RETURN_IF_ERROR, so we define the
// two macros once here.
#pragma once

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"

#define NF_CONCAT_INNER(a, b) a##b
#define NF_CONCAT(a, b) NF_CONCAT_INNER(a, b)

#define NF_RETURN_IF_ERROR(expr)             \
  do {                                       \
    ::absl::Status nf_status_ = (expr);      \
    if (!nf_status_.ok()) return nf_status_; \
  } while (0)

#define NF_ASSIGN_OR_RETURN(lhs, expr) \
  NF_ASSIGN_OR_RETURN_IMPL(NF_CONCAT(nf_statusor_, __LINE__), lhs, expr)

#define NF_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                             \
  if (!tmp.ok()) return tmp.status();            \
  lhs = std::move(tmp).value()

namespace nasforge {

// INVALID_ARGUMENT with the offending field's path first: "budget.max_trials: must be >= 1".
inline absl::Status FieldError(absl::string_view field, absl::string_view reason) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", reason));
}

}  // namespace nasforge
