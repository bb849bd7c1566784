// Typed hyperparameters (core/parameters.h). Every domain is a list of values addressed by index
// (a gene), computed on the fly: ordinal and categorical lists as given, integer ranges exactly
// or on a rounded grid, reals on a step or a linear/log grid.
#include "core/parameters.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "core/param_domain.h"
#include "core/space_kind.h"
#include "core/status.h"

namespace nasforge {
namespace {

// Text safe in the canonical JSON (no escapes needed) and on one line.
bool PlainText(const std::string& s) {
  for (unsigned char c : s) {
    if (c < 0x20 || c == '"' || c == '\\' || c >= 0x7f) return false;
  }
  return true;
}

absl::Status ValidateDomain(const v1::Parameter& p, const std::string& at) {
  switch (p.domain_case()) {
    case v1::Parameter::kReal: {
      const auto& r = p.real();
      const std::string f = at + ".real";
      if (!std::isfinite(r.low()) || !std::isfinite(r.high()) || !(r.low() < r.high())) {
        return FieldError(f + ".high",
                          absl::StrCat(FormatNumber(r.high()), " must be a number above low (",
                                       FormatNumber(r.low()), ")"));
      }
      if (r.log() && r.low() <= 0) return FieldError(f + ".low", "must be > 0 with log");
      if (!std::isfinite(r.step()) || r.step() < 0) {
        return FieldError(f + ".step", "must be >= 0 (0: no step)");
      }
      if (r.step() > 0) {
        if (r.log()) return FieldError(f + ".step", "a log-scaled real takes no step");
        if (r.levels() != 0) return FieldError(f + ".levels", "give step or levels, not both");
        const double n = std::floor((r.high() - r.low()) / r.step() + 1e-9) + 1;
        if (n < 2 || n > kMaxLevels) {
          return FieldError(f + ".step", absl::StrCat("gives ", n, " values; between 2 and ",
                                                      kMaxLevels, " are allowed"));
        }
      } else if (r.levels() != 0 && (r.levels() < 2 || r.levels() > kMaxLevels)) {
        return FieldError(f + ".levels",
                          absl::StrCat(r.levels(), " is out of range [2, ", kMaxLevels, "]"));
      }
      return absl::OkStatus();
    }
    case v1::Parameter::kInteger: {
      const auto& n = p.integer();
      const std::string f = at + ".integer";
      if (std::abs(static_cast<double>(n.low())) > kMaxExactInteger ||
          std::abs(static_cast<double>(n.high())) > kMaxExactInteger) {
        return FieldError(f, "low and high must lie within +-2^53");
      }
      if (n.low() >= n.high()) {
        return FieldError(f + ".high",
                          absl::StrCat(n.high(), " must be above low (", n.low(), ")"));
      }
      if (n.log() && n.low() < 1) return FieldError(f + ".low", "must be >= 1 with log");
      return absl::OkStatus();
    }
    case v1::Parameter::kCategorical: {
      const auto& c = p.categorical();
      const std::string f = at + ".categorical.values";
      if (c.values().empty()) return FieldError(f, "needs at least one value");
      std::set<std::string> seen;
      for (int i = 0; i < c.values_size(); ++i) {
        const std::string& v = c.values(i);
        if (v.empty() || !PlainText(v)) {
          return FieldError(absl::StrCat(f, "[", i, "]"),
                            "must be non-empty printable ASCII without quotes or backslashes");
        }
        if (!seen.insert(v).second) {
          return FieldError(absl::StrCat(f, "[", i, "]"),
                            absl::StrCat("'", v, "' is listed twice"));
        }
      }
      return absl::OkStatus();
    }
    case v1::Parameter::kOrdinal: {
      const auto& o = p.ordinal();
      const std::string f = at + ".ordinal.values";
      if (o.values().empty()) return FieldError(f, "needs at least one value");
      for (int i = 0; i < o.values_size(); ++i) {
        if (!std::isfinite(o.values(i))) {
          return FieldError(absl::StrCat(f, "[", i, "]"), "must be a finite number");
        }
        if (i > 0 && !(o.values(i) > o.values(i - 1))) {
          return FieldError(
              absl::StrCat(f, "[", i, "]"),
              absl::StrCat(FormatNumber(o.values(i)), ": ordinal values must increase"));
        }
      }
      return absl::OkStatus();
    }
    default:
      return FieldError(at, "one of real, integer, categorical, ordinal is required");
  }
}

// A condition's value names a choice's label: the same text, or the same number ("5", "5.0").
bool LabelMatches(const std::string& label, const std::string& value) {
  if (label == value) return true;
  double a, b;
  return absl::SimpleAtod(label, &a) && absl::SimpleAtod(value, &b) && a == b;
}

// Walks the parameters in order, deciding activity from the values chosen so far.
// `index[j]` is parameter j's value index, or -1 when inactive.
bool Active(const v1::SearchSpace& space, const std::vector<ParamDomain>& d,
            const std::map<std::string, int>& position, const std::vector<int>& index, int j,
            const ChoiceLabels& choices) {
  for (const auto& c : space.parameters(j).when()) {
    bool any = false;
    if (!c.choice().empty()) {
      auto it = choices.find(c.choice());
      if (it == choices.end()) return false;
      for (const auto& w : c.values()) any = any || LabelMatches(it->second, w);
      if (!any) return false;
      continue;
    }
    auto it = position.find(c.parameter());
    if (it == position.end()) return false;
    const int k = it->second;
    if (index[k] < 0) return false;
    for (const auto& w : c.values()) any = any || d[k].Matches(index[k], w);
    if (!any) return false;
  }
  return true;
}

struct Walk {
  std::vector<ParamDomain> domains;
  std::map<std::string, int> position;
};
Walk MakeWalk(const v1::SearchSpace& space) {
  Walk w;
  for (int j = 0; j < space.parameters_size(); ++j) {
    w.domains.emplace_back(space.parameters(j));
    w.position[space.parameters(j).name()] = j;
  }
  return w;
}

}  // namespace

std::string FormatNumber(double v) {
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof(buf), v);
  return std::string(buf, r.ptr);
}

std::string ParamText(const v1::ParamValue& v) {
  return v.text().empty() ? FormatNumber(v.number()) : v.text();
}

namespace {

// One condition of a parameter: on a parameter declared before it (`declared`: name -> index)
// or on one of the kind's choices, naming values it has.
absl::Status ValidateCondition(const v1::SearchSpace& space,
                               const std::map<std::string, int>& declared,
                               const v1::ParameterCondition& cond, const std::string& cat) {
  if (cond.values().empty()) return FieldError(cat + ".values", "needs at least one value");
  if (!cond.choice().empty()) {
    if (!cond.parameter().empty()) {
      return FieldError(cat, "names a parameter or a choice, not both");
    }
    const std::vector<Decision> kind = SpaceDecisions(space);
    const size_t nk = kind.size() - space.parameters_size();
    const Decision* d = nullptr;
    std::vector<std::string> names;
    for (size_t i = 0; i < nk; ++i) {
      names.push_back(kind[i].name);
      if (kind[i].name == cond.choice()) d = &kind[i];
    }
    if (d == nullptr) {
      return FieldError(
          cat + ".choice",
          absl::StrCat("'", cond.choice(), "' is not a choice of the ", KindName(space), " space (",
                       names.empty() ? "it has none" : absl::StrJoin(names, ", "), ")"));
    }
    for (int v = 0; v < cond.values_size(); ++v) {
      bool found = false;
      for (const auto& l : d->labels) found = found || LabelMatches(l, cond.values(v));
      if (!found) {
        return FieldError(absl::StrCat(cat, ".values[", v, "]"),
                          absl::StrCat("'", cond.values(v), "' is not a value of ", cond.choice(),
                                       " (", absl::StrJoin(d->labels, ", "), ")"));
      }
    }
    return absl::OkStatus();
  }
  auto it = declared.find(cond.parameter());
  if (it == declared.end()) {
    return FieldError(
        cat + ".parameter",
        absl::StrCat("'", cond.parameter(),
                     "' is not a parameter declared before this one (or name a `choice`)"));
  }
  const ParamDomain other(space.parameters(it->second));
  for (int v = 0; v < cond.values_size(); ++v) {
    bool found = false;
    if (other.text()) {
      for (int i = 0; i < other.levels() && !found; ++i) found = other.Matches(i, cond.values(v));
    } else {
      double x;
      found = absl::SimpleAtod(cond.values(v), &x) && other.IndexOfNumber(x) >= 0;
    }
    if (!found) {
      return FieldError(
          absl::StrCat(cat, ".values[", v, "]"),
          absl::StrCat("'", cond.values(v), "' is not a value of ", cond.parameter()));
    }
  }
  return absl::OkStatus();
}

}  // namespace

bool ConditionsOnChoices(const v1::SearchSpace& space) {
  for (const auto& p : space.parameters()) {
    for (const auto& c : p.when()) {
      if (!c.choice().empty()) return true;
    }
  }
  return false;
}

absl::Status ValidateParameters(const v1::SearchSpace& space, const std::string& path) {
  std::map<std::string, int> declared;
  for (int j = 0; j < space.parameters_size(); ++j) {
    const auto& p = space.parameters(j);
    const std::string at = absl::StrCat(path, ".parameters[", j, "]");
    if (!IsLowerIdentifier(p.name())) {
      return FieldError(at + ".name", absl::StrCat("'", p.name(),
                                                   "' is not a lower-case identifier "
                                                   "(letters, digits, _; a letter first)"));
    }
    if (declared.count(p.name())) {
      return FieldError(at + ".name", absl::StrCat("'", p.name(), "' is declared twice"));
    }
    NF_RETURN_IF_ERROR(ValidateDomain(p, at));
    for (int c = 0; c < p.when_size(); ++c) {
      NF_RETURN_IF_ERROR(
          ValidateCondition(space, declared, p.when(c), absl::StrCat(at, ".when[", c, "]")));
    }
    declared[p.name()] = j;
  }
  return absl::OkStatus();
}

absl::Status ValidateParamValues(const v1::ParamValues& values, const std::string& path) {
  std::set<std::string> seen;
  for (int i = 0; i < values.values_size(); ++i) {
    const auto& v = values.values(i);
    const std::string at = absl::StrCat(path, ".values[", i, "]");
    if (!IsLowerIdentifier(v.name())) {
      return FieldError(at + ".name", absl::StrCat("'", v.name(), "' is not a parameter name"));
    }
    if (!seen.insert(v.name()).second) {
      return FieldError(at + ".name", absl::StrCat("'", v.name(), "' is given twice"));
    }
    if (!std::isfinite(v.number())) return FieldError(at + ".number", "must be finite");
    if (!PlainText(v.text())) {
      return FieldError(at + ".text", "must be printable ASCII without quotes or backslashes");
    }
  }
  return absl::OkStatus();
}

std::vector<Decision> ParameterDecisions(const v1::SearchSpace& space) {
  std::vector<Decision> out;
  for (const auto& p : space.parameters()) {
    const ParamDomain d(p);
    Decision dec;
    dec.name = "params." + p.name();
    dec.choices = d.levels();
    dec.ordered = d.ordered();
    out.push_back(std::move(dec));
  }
  return out;
}

void DecodeParameters(const v1::SearchSpace& space, const int* genes, const ChoiceLabels& choices,
                      v1::Architecture* arch) {
  if (space.parameters_size() == 0) return;
  const Walk w = MakeWalk(space);
  std::vector<int> index(space.parameters_size(), -1);
  std::vector<v1::ParamValue> values;
  for (int j = 0; j < space.parameters_size(); ++j) {
    if (!Active(space, w.domains, w.position, index, j, choices)) continue;
    index[j] = std::clamp(genes[j], 0, w.domains[j].levels() - 1);
    values.push_back(w.domains[j].Value(index[j]));
  }
  std::sort(values.begin(), values.end(),
            [](const v1::ParamValue& a, const v1::ParamValue& b) { return a.name() < b.name(); });
  auto* out = arch->mutable_params();
  out->Clear();
  for (auto& v : values) *out->add_values() = std::move(v);
}

namespace {
// The genes of arch's parameters, or the first reason they are not in the space.
absl::StatusOr<Genes> Encode(const v1::SearchSpace& space, const v1::Architecture& arch,
                             const ChoiceLabels& choices, const std::string& path) {
  const Walk w = MakeWalk(space);
  std::map<std::string, const v1::ParamValue*> given;
  for (const auto& v : arch.params().values()) given[v.name()] = &v;
  for (const auto& [name, v] : given) {
    if (!w.position.count(name)) {
      return FieldError(path + ".params",
                        space.parameters_size() == 0
                            ? std::string("the search space has no parameters")
                            : absl::StrCat("'", name, "' is not a parameter of the search space"));
    }
  }
  std::vector<int> index(space.parameters_size(), -1);
  Genes genes(space.parameters_size(), 0);
  for (int j = 0; j < space.parameters_size(); ++j) {
    const std::string& name = space.parameters(j).name();
    auto it = given.find(name);
    const bool active = Active(space, w.domains, w.position, index, j, choices);
    if (!active) {
      if (it != given.end()) {
        return FieldError(
            path + ".params",
            absl::StrCat("'", name, "' is inactive here (its condition does not hold)"));
      }
      continue;
    }
    if (it == given.end()) {
      return FieldError(path + ".params", absl::StrCat("needs a value for '", name, "'"));
    }
    const ParamDomain& d = w.domains[j];
    const int i = d.IndexOf(*it->second);
    if (i < 0) {
      std::string why = d.text()
                            ? absl::StrCat("'", it->second->text(), "' is not one of its values")
                            : absl::StrCat(FormatNumber(it->second->number()),
                                           " is not one of its values (nearest: ",
                                           FormatNumber(d.Nearest(it->second->number())), ")");
      return FieldError(absl::StrCat(path, ".params[", name, "]"), why);
    }
    index[j] = i;
    genes[j] = i;
  }
  return genes;
}
}  // namespace

std::optional<Genes> EncodeParameters(const v1::SearchSpace& space, const v1::Architecture& arch,
                                      const ChoiceLabels& choices) {
  auto g = Encode(space, arch, choices, "architecture");
  if (!g.ok()) return std::nullopt;
  return *std::move(g);
}

absl::Status CheckParametersInSpace(const v1::SearchSpace& space, const v1::Architecture& arch,
                                    const ChoiceLabels& choices, const std::string& path) {
  return Encode(space, arch, choices, path).status();
}

uint64_t ParameterSpaceSize(const v1::SearchSpace& space) {
  const Walk w = MakeWalk(space);
  const int n = space.parameters_size();
  std::set<std::string> referenced;
  for (const auto& p : space.parameters()) {
    for (const auto& c : p.when()) referenced.insert(c.parameter());
  }
  auto mul = [](uint64_t a, uint64_t b) { return SatMul(a, b); };
  // Without conditions, or when enumerating the referenced ones would cost too much: the
  // product (an upper bound with conditions).
  uint64_t product = 1;
  for (const auto& d : w.domains) product = mul(product, d.levels());
  // Conditions on the architecture's choices: the product too (the kind's size is counted
  // apart, so an upper bound).
  if (referenced.empty() || ConditionsOnChoices(space)) return product;
  int64_t budget = 1'000'000;
  std::vector<int> index(n, -1);
  std::function<uint64_t(int)> count = [&](int j) -> uint64_t {
    if (--budget < 0) return 0;
    if (j == n) return 1;
    if (!Active(space, w.domains, w.position, index, j, {})) {
      index[j] = -1;
      return count(j + 1);
    }
    const std::string& name = space.parameters(j).name();
    if (!referenced.count(name)) {
      index[j] = 0;
      return mul(w.domains[j].levels(), count(j + 1));
    }
    uint64_t total = 0;
    for (int i = 0; i < w.domains[j].levels(); ++i) {
      index[j] = i;
      uint64_t c = count(j + 1);
      total = total > UINT64_MAX - c ? UINT64_MAX : total + c;
    }
    index[j] = -1;
    return total;
  };
  uint64_t exact = count(0);
  return budget < 0 ? product : exact;
}

void NormalizeParams(v1::Architecture* arch) {
  if (!arch->has_params()) return;
  if (arch->params().values().empty()) {
    arch->clear_params();
    return;
  }
  auto* v = arch->mutable_params()->mutable_values();
  std::sort(v->begin(), v->end(),
            [](const v1::ParamValue& a, const v1::ParamValue& b) { return a.name() < b.name(); });
}

std::string ParamsSummary(const v1::Architecture& arch) {
  std::vector<std::string> parts;
  for (const auto& v : arch.params().values()) {
    parts.push_back(absl::StrCat(v.name(), "=", ParamText(v)));
  }
  return absl::StrJoin(parts, " ");
}

const v1::ParamValue* FindParam(const v1::Architecture& arch, const std::string& name) {
  for (const auto& v : arch.params().values()) {
    if (v.name() == name) return &v;
  }
  return nullptr;
}

}  // namespace nasforge
