// ChoiceKind (core/choice_kind.h): the generic half of a kind registered in code. A space is
// the kind's choices by name, in any order; an architecture lists one value per choice, ordered
// by name after Normalize, so equal architectures hash equally.
#include "core/choice_kind.h"

#include <algorithm>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/status.h"

namespace nasforge {
namespace {

// The space's choices ordered by name (decision order), as pointers into `space`.
std::vector<const v1::CustomChoice*> Sorted(const v1::CustomSpace& s) {
  std::vector<const v1::CustomChoice*> out;
  for (const auto& c : s.choices()) out.push_back(&c);
  std::sort(out.begin(), out.end(), [](auto* a, auto* b) { return a->name() < b->name(); });
  return out;
}

std::string Needed(const std::vector<ChoiceSpec>& specs) {
  std::vector<std::string> names;
  for (const auto& c : specs) names.push_back(c.name);
  return absl::StrJoin(names, ", ");
}

const ChoiceSpec* SpecOf(const std::vector<ChoiceSpec>& specs, const std::string& name) {
  for (const auto& c : specs) {
    if (c.name == name) return &c;
  }
  return nullptr;
}

}  // namespace

absl::Status ChoiceKind::ValidateSpace(const v1::SearchSpace& space, const std::string& p) const {
  const auto& s = space.custom();
  const std::vector<ChoiceSpec> specs = Choices();
  std::map<std::string, int> seen;
  for (int i = 0; i < s.choices_size(); ++i) {
    const auto& c = s.choices(i);
    const std::string at = absl::StrCat(p, ".choices[", i, "]");
    const ChoiceSpec* spec = SpecOf(specs, c.name());
    if (spec == nullptr) {
      return FieldError(at + ".name", absl::StrCat("'", c.name(), "' is not a choice of kind ",
                                                   name_, " (", Needed(specs), ")"));
    }
    if (!seen.emplace(c.name(), i).second) {
      return FieldError(at + ".name", absl::StrCat("'", c.name(), "' is listed twice"));
    }
    NF_RETURN_IF_ERROR(CheckChoices(c.values(), at + ".values", spec->min, spec->max));
  }
  for (const auto& spec : specs) {
    if (!seen.count(spec.name)) {
      return FieldError(p + ".choices", absl::StrCat("kind ", name_, " needs choice '", spec.name,
                                                     "' (all of: ", Needed(specs), ")"));
    }
  }
  return absl::OkStatus();
}

absl::Status ChoiceKind::ValidateArch(const v1::Architecture& arch, const std::string& p) const {
  const auto& a = arch.custom();
  const std::vector<ChoiceSpec> specs = Choices();
  std::map<std::string, int> seen;
  for (int i = 0; i < a.values_size(); ++i) {
    const auto& v = a.values(i);
    const std::string at = absl::StrCat(p, ".values[", i, "]");
    const ChoiceSpec* spec = SpecOf(specs, v.name());
    if (spec == nullptr) {
      return FieldError(at + ".name", absl::StrCat("'", v.name(), "' is not a choice of kind ",
                                                   name_, " (", Needed(specs), ")"));
    }
    if (!seen.emplace(v.name(), i).second) {
      return FieldError(at + ".name", absl::StrCat("'", v.name(), "' is given twice"));
    }
    NF_RETURN_IF_ERROR(CheckRange(v.value(), at + ".value", spec->min, spec->max));
  }
  for (const auto& spec : specs) {
    if (!seen.count(spec.name)) {
      return FieldError(p + ".values",
                        absl::StrCat("kind ", name_, " needs a value for '", spec.name, "'"));
    }
  }
  return absl::OkStatus();
}

void ChoiceKind::Normalize(v1::Architecture* arch) const {
  auto* values = arch->mutable_custom()->mutable_values();
  std::sort(values->begin(), values->end(),
            [](const v1::CustomValue& a, const v1::CustomValue& b) { return a.name() < b.name(); });
}

std::vector<Decision> ChoiceKind::Decisions(const v1::SearchSpace& space) const {
  std::vector<Decision> d;
  for (const auto* c : Sorted(space.custom())) AddDecision(&d, c->name(), c->values_size());
  return d;
}

v1::Architecture ChoiceKind::Decode(const v1::SearchSpace& space, const Genes& genes) const {
  v1::Architecture arch;
  auto* a = arch.mutable_custom();
  a->set_kind(name_);
  const auto sorted = Sorted(space.custom());
  for (size_t i = 0; i < sorted.size(); ++i) {
    auto* v = a->add_values();
    v->set_name(sorted[i]->name());
    v->set_value(sorted[i]->values(genes[i]));
  }
  return arch;
}

std::optional<Genes> ChoiceKind::Encode(const v1::SearchSpace& space,
                                        const v1::Architecture& arch) const {
  const auto sorted = Sorted(space.custom());
  const auto& a = arch.custom();
  if (a.values_size() != static_cast<int>(sorted.size())) return std::nullopt;
  Genes g(sorted.size(), 0);
  for (size_t i = 0; i < sorted.size(); ++i) {
    int found = -1;
    for (const auto& v : a.values()) {
      if (v.name() == sorted[i]->name()) found = IndexOf(sorted[i]->values(), v.value());
    }
    if (found < 0) return std::nullopt;
    g[i] = found;
  }
  return g;
}

absl::Status ChoiceKind::SetResolution(v1::Architecture*, int) const {
  return FieldError("resolution", absl::StrCat("kind ", name_, " has no input resolution"));
}

std::string ChoiceKind::Summary(const v1::Architecture& arch) const {
  std::vector<std::string> parts;
  for (const auto& v : arch.custom().values()) parts.push_back(absl::StrCat(v.name(), v.value()));
  return absl::StrCat(name_, ":", absl::StrJoin(parts, "-"));
}

int32_t ChoiceKind::Value(const v1::Architecture& arch, const std::string& name) {
  for (const auto& v : arch.custom().values()) {
    if (v.name() == name) return v.value();
  }
  return 0;
}

absl::Status RegisterChoiceKind(std::shared_ptr<const ChoiceKind> kind) {
  const std::string name = kind->name();
  bool ident = !name.empty() && absl::ascii_islower(name[0]);
  for (char c : name)
    ident = ident && (absl::ascii_islower(c) || absl::ascii_isdigit(c) || c == '_');
  if (!ident) {
    return absl::InvalidArgumentError(
        absl::StrCat("search-space kind '", name, "': a name is a lower-case identifier"));
  }
  SpaceKindEntry e;
  e.name = name;
  e.kind = kind.get();
  e.owned = std::move(kind);
  return SpaceKinds().Add(std::move(e));
}

}  // namespace nasforge
