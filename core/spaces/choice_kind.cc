// ChoiceKind (core/choice_kind.h): the generic half of a kind registered in code. A space is
// the kind's choices by name, in any order; an architecture lists one value per choice, ordered
// by name after Normalize, so equal architectures hash equally.
#include "core/choice_kind.h"

#include <algorithm>
#include <cstdint>
#include <functional>
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

namespace {

// The names of a space's choices or an architecture's values (`field`: "choices" / "values"):
// each a choice of the kind, given once (`twice` says how the error puts it), all given; then
// `check_item(i, spec, at)` for each.
template <typename Items, typename CheckItem>
absl::Status CheckChoiceNames(const Items& items, const std::string& p, const std::string& field,
                              const std::vector<ChoiceSpec>& specs, const std::string& kind,
                              const char* twice, const CheckItem& check_item,
                              const std::function<std::string(const ChoiceSpec&)>& missing) {
  std::map<std::string, int> seen;
  for (int i = 0; i < items.size(); ++i) {
    const std::string& name = items[i].name();
    const std::string at = absl::StrCat(p, ".", field, "[", i, "]");
    const ChoiceSpec* spec = SpecOf(specs, name);
    if (spec == nullptr) {
      return FieldError(at + ".name", absl::StrCat("'", name, "' is not a choice of kind ", kind,
                                                   " (", Needed(specs), ")"));
    }
    if (!seen.emplace(name, i).second) {
      return FieldError(at + ".name", absl::StrCat("'", name, "' is ", twice, " twice"));
    }
    NF_RETURN_IF_ERROR(check_item(i, *spec, at));
  }
  for (const auto& spec : specs) {
    if (!seen.count(spec.name)) return FieldError(p + "." + field, missing(spec));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ChoiceKind::ValidateSpace(const v1::SearchSpace& space, const std::string& p) const {
  const auto& choices = space.custom().choices();
  const std::vector<ChoiceSpec> specs = Choices();
  return CheckChoiceNames(
      choices, p, "choices", specs, name_, "listed",
      [&](int i, const ChoiceSpec& spec, const std::string& at) {
        return CheckChoices(choices[i].values(), at + ".values", spec.min, spec.max);
      },
      [&](const ChoiceSpec& spec) {
        return absl::StrCat("kind ", name_, " needs choice '", spec.name,
                            "' (all of: ", Needed(specs), ")");
      });
}

absl::Status ChoiceKind::ValidateArch(const v1::Architecture& arch, const std::string& p) const {
  const auto& values = arch.custom().values();
  return CheckChoiceNames(
      values, p, "values", Choices(), name_, "given",
      [&](int i, const ChoiceSpec& spec, const std::string& at) {
        return CheckRange(values[i].value(), at + ".value", spec.min, spec.max);
      },
      [&](const ChoiceSpec& spec) {
        return absl::StrCat("kind ", name_, " needs a value for '", spec.name, "'");
      });
}

void ChoiceKind::Normalize(v1::Architecture* arch) const {
  auto* values = arch->mutable_custom()->mutable_values();
  std::sort(values->begin(), values->end(),
            [](const v1::CustomValue& a, const v1::CustomValue& b) { return a.name() < b.name(); });
}

std::vector<Decision> ChoiceKind::Decisions(const v1::SearchSpace& space) const {
  std::vector<Decision> d;
  for (const auto* c : Sorted(space.custom())) {
    AddDecision(&d, c->name(), c->values_size(), c->values());
  }
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
  if (!IsLowerIdentifier(name)) {
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
