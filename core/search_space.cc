#include "core/search_space.h"

#include <google/protobuf/util/json_util.h>

#include <algorithm>
#include <cmath>
#include <optional>

#include "absl/strings/ascii.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "core/canonical_json.h"
#include "core/finite.h"
#include "core/parameters.h"
#include "core/space_kind.h"
#include "core/status.h"

namespace nasforge {

uint64_t SatMul(uint64_t a, uint64_t b) {
  if (a != 0 && b > UINT64_MAX / a) return UINT64_MAX;
  return a * b;
}

absl::Status CheckName(const std::string& value, absl::string_view path,
                       const std::vector<std::string>& allowed) {
  for (const auto& a : allowed) {
    if (a == value) return absl::OkStatus();
  }
  std::string list;
  for (const auto& a : allowed) absl::StrAppend(&list, list.empty() ? "" : ", ", a);
  return FieldError(path, absl::StrCat("'", value, "' is not one of ", list));
}

absl::Status CheckNames(const google::protobuf::RepeatedPtrField<std::string>& values,
                        absl::string_view path, const std::vector<std::string>& allowed) {
  if (values.empty()) return FieldError(path, "needs at least one choice");
  for (int i = 0; i < values.size(); ++i) {
    NF_RETURN_IF_ERROR(CheckName(values[i], absl::StrCat(path, "[", i, "]"), allowed));
    for (int j = 0; j < i; ++j) {
      if (values[j] == values[i]) return FieldError(path, values[i] + " is listed twice");
    }
  }
  return absl::OkStatus();
}

bool IsLowerIdentifier(absl::string_view s) {
  if (s.empty() || !absl::ascii_islower(s[0])) return false;
  for (char c : s) {
    if (!absl::ascii_islower(c) && !absl::ascii_isdigit(c) && c != '_') return false;
  }
  return true;
}

absl::Status CheckRange(int64_t v, absl::string_view path, int64_t lo, int64_t hi) {
  if (v < lo || v > hi) {
    return FieldError(path, absl::StrCat(v, " is out of range [", lo, ", ", hi, "]"));
  }
  return absl::OkStatus();
}

uint64_t SpaceKind::Size(const v1::SearchSpace& space) const {
  uint64_t n = 1;
  for (const auto& d : Decisions(space)) n = SatMul(n, d.choices);
  return n;
}

namespace {

// The built-in kinds: one line each.
void Builtins(SpaceKindRegistry& r) {
  for (const SpaceKind* k :
       {&MBConvKind(), &ResNetKind(), &ConvNeXtKind(), &NB201Kind(), &MLPKind()}) {
    r.AddBuiltin({k->name(), k});
  }
}

const std::string& OneofName(const google::protobuf::Message& m) {
  static const std::string kNone;
  const auto* oneof = m.GetDescriptor()->oneof_decl(0);
  const auto* f = m.GetReflection()->GetOneofFieldDescriptor(m, oneof);
  return f == nullptr ? kNone : f->name();
}

const SpaceKind* Lookup(const std::string& name) {
  if (name.empty()) return nullptr;
  const SpaceKindEntry* e = SpaceKinds().Find(name);
  return e == nullptr ? nullptr : e->kind;
}

// The built-in kinds (the oneof arms) and `custom` for the rest.
std::string KindsRequired() {
  std::vector<std::string> arms;
  for (const std::string& n : SpaceKinds().Names()) {
    if (!Lookup(n)->Custom()) arms.push_back(n);
  }
  arms.push_back("custom");
  return absl::StrCat("one of ", absl::StrJoin(arms, ", "), " is required");
}

absl::Status UnknownCustomKind(const std::string& kind, absl::string_view path) {
  std::vector<std::string> custom;
  for (const std::string& n : SpaceKinds().Names()) {
    if (Lookup(n)->Custom()) custom.push_back(n);
  }
  return FieldError(absl::StrCat(path, ".custom.kind"),
                    absl::StrCat("'", kind, "' is not a kind registered in this program (",
                                 custom.empty() ? "none is" : absl::StrJoin(custom, ", "),
                                 "); a kind registered in code is known only to the programs "
                                 "that register it (core/choice_kind.h)"));
}

}  // namespace

SpaceKindRegistry& SpaceKinds() {
  return GlobalRegistry<SpaceKindEntry>("search-space kind", Builtins);
}

namespace {
// A built-in kind by its oneof arm; a custom kind by the name the custom arm gives (a built-in
// name there, or a custom name as an arm, finds nothing).
const SpaceKind* KindByName(const std::string& oneof, const std::string& custom) {
  const bool is_custom = oneof == "custom";
  const SpaceKind* k = Lookup(is_custom ? custom : oneof);
  return k != nullptr && k->Custom() == is_custom ? k : nullptr;
}
}  // namespace

// A space of parameters only, or an architecture of one (no kind, values): NoArchKind.
const SpaceKind* KindOf(const v1::SearchSpace& space) {
  if (space.space_case() == v1::SearchSpace::SPACE_NOT_SET && space.parameters_size() > 0) {
    return &NoArchKind();
  }
  return KindByName(OneofName(space), space.custom().kind());
}
const SpaceKind* KindOf(const v1::Architecture& arch) {
  if (arch.arch_case() == v1::Architecture::ARCH_NOT_SET && arch.has_params()) {
    return &NoArchKind();
  }
  return KindByName(OneofName(arch), arch.custom().kind());
}

std::string KindName(const v1::SearchSpace& space) {
  if (KindOf(space) == &NoArchKind()) return NoArchKind().name();
  return space.has_custom() ? space.custom().kind() : OneofName(space);
}
std::string KindName(const v1::Architecture& arch) {
  if (KindOf(arch) == &NoArchKind()) return NoArchKind().name();
  return arch.has_custom() ? arch.custom().kind() : OneofName(arch);
}

uint64_t MixSeed(uint64_t seed, uint64_t counter) {
  uint64_t z = seed + 0x9E3779B97F4A7C15ULL * (counter + 1);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

absl::Status ValidateSearchSpace(const v1::SearchSpace& space, absl::string_view path) {
  const SpaceKind* k = KindOf(space);
  if (k == nullptr) {
    if (space.has_custom()) return UnknownCustomKind(space.custom().kind(), path);
    return FieldError(path, KindsRequired());
  }
  NF_RETURN_IF_ERROR(ValidateFinite(space, std::string(path)));  // se_ratio: nan (fuzz/space)
  NF_RETURN_IF_ERROR(k->ValidateSpace(space, absl::StrCat(path, ".", OneofName(space))));
  return ValidateParameters(space, std::string(path));
}

absl::Status ValidateArchitecture(const v1::Architecture& arch, absl::string_view path) {
  const SpaceKind* k = KindOf(arch);
  if (k == nullptr) {
    if (arch.has_custom()) return UnknownCustomKind(arch.custom().kind(), path);
    return FieldError(path, KindsRequired());
  }
  NF_RETURN_IF_ERROR(ValidateFinite(arch, std::string(path)));
  NF_RETURN_IF_ERROR(k->ValidateArch(arch, absl::StrCat(path, ".", OneofName(arch))));
  return ValidateParamValues(arch.params(), absl::StrCat(path, ".params"));
}

absl::Status CheckInSpace(const v1::SearchSpace& space, const v1::Architecture& arch,
                          absl::string_view path) {
  NF_RETURN_IF_ERROR(ValidateArchitecture(arch, path));
  if (KindName(space) != KindName(arch)) {
    return FieldError(path, absl::StrCat("a ", KindName(arch), " architecture is not in a ",
                                         KindName(space), " space"));
  }
  ChoiceLabels choices;  // what conditions on the architecture's choices read
  if (ConditionsOnChoices(space)) {
    auto kind_genes = KindOf(space)->Encode(space, NormalizedArchitecture(arch));
    if (!kind_genes) return FieldError(path, "is not one of the architectures of the search space");
    choices = ChoicesOf(space, *kind_genes);
  }
  NF_RETURN_IF_ERROR(CheckParametersInSpace(space, arch, choices, std::string(path)));
  if (!EncodeArchitecture(space, arch)) {
    return FieldError(path, "is not one of the architectures of the search space");
  }
  return absl::OkStatus();
}

// The kind's decisions come first, then one per parameter (core/parameters.h).
std::vector<Decision> SpaceDecisions(const v1::SearchSpace& space) {
  const SpaceKind* k = KindOf(space);
  if (k == nullptr) return {};
  std::vector<Decision> d = k->Decisions(space);
  for (Decision& p : ParameterDecisions(space)) d.push_back(std::move(p));
  return d;
}

v1::Architecture DecodeArchitecture(const v1::SearchSpace& space, const Genes& genes) {
  const SpaceKind* k = KindOf(space);
  v1::Architecture arch = k->Decode(space, genes);
  if (space.parameters_size() > 0) {
    const size_t nk = genes.size() - space.parameters_size();
    ChoiceLabels choices;
    if (ConditionsOnChoices(space)) {
      // As the architecture has them: a choice it does not use (an MLP layer beyond its depth)
      // reads as its canonical (first) value, whatever the gene says.
      auto canonical = k->Encode(space, NormalizedArchitecture(arch));
      choices = ChoicesOf(space, canonical ? *canonical : Genes(genes.begin(), genes.begin() + nk));
    }
    DecodeParameters(space, genes.data() + nk, choices, &arch);
  }
  return arch;
}

ChoiceLabels ChoicesOf(const v1::SearchSpace& space, const Genes& kind_genes) {
  ChoiceLabels out;
  if (!ConditionsOnChoices(space)) return out;
  const std::vector<Decision> d = KindOf(space)->Decisions(space);
  for (size_t i = 0; i < d.size() && i < kind_genes.size(); ++i) {
    const int g = kind_genes[i];
    if (g >= 0 && g < static_cast<int>(d[i].labels.size())) out[d[i].name] = d[i].labels[g];
  }
  return out;
}

namespace {
std::optional<Genes> EncodeBoth(const SpaceKind* k, const v1::SearchSpace& space,
                                const v1::Architecture& normalized) {
  auto genes = k->Encode(space, normalized);
  if (!genes || space.parameters_size() == 0) return genes;
  auto params = EncodeParameters(space, normalized, ChoicesOf(space, *genes));
  if (!params) return std::nullopt;
  genes->insert(genes->end(), params->begin(), params->end());
  return genes;
}
}  // namespace

std::optional<Genes> EncodeArchitecture(const v1::SearchSpace& space,
                                        const v1::Architecture& arch) {
  const SpaceKind* k = KindOf(space);
  if (k == nullptr || KindOf(arch) != k) return std::nullopt;
  auto genes = EncodeBoth(k, space, NormalizedArchitecture(arch));
  // Decisions that do not change the architecture (an MLP layer beyond its depth, an inactive
  // parameter) are 0.
  if (genes && ArchHash(DecodeArchitecture(space, *genes)) != ArchHash(arch)) return std::nullopt;
  return genes;
}

Genes CanonicalGenes(const v1::SearchSpace& space, const Genes& genes) {
  const SpaceKind* k = KindOf(space);
  auto g = EncodeBoth(k, space, DecodeArchitecture(space, genes));
  return g ? *g : genes;
}

Genes SampleGenes(const v1::SearchSpace& space, std::mt19937_64& rng) {
  Genes g;
  for (const auto& d : SpaceDecisions(space)) {
    std::uniform_int_distribution<int> u(0, d.choices - 1);
    g.push_back(u(rng));
  }
  return g;
}

v1::Architecture SampleArchitecture(const v1::SearchSpace& space, uint64_t seed) {
  std::mt19937_64 rng(seed);
  return DecodeArchitecture(space, SampleGenes(space, rng));
}

Genes MutateGenes(const v1::SearchSpace& space, const Genes& parent, std::mt19937_64& rng) {
  auto decisions = SpaceDecisions(space);
  std::vector<int> free;
  for (size_t i = 0; i < decisions.size(); ++i) {
    if (decisions[i].choices > 1) free.push_back(static_cast<int>(i));
  }
  if (free.empty()) return parent;
  const std::string parent_hash = ArchHash(DecodeArchitecture(space, parent));
  Genes child = parent;
  for (int attempt = 0; attempt < 32; ++attempt) {
    child = parent;
    int i = free[std::uniform_int_distribution<size_t>(0, free.size() - 1)(rng)];
    const Decision& d = decisions[i];
    if (d.ordered && d.choices > 16) {
      // A fine grid: a Gaussian step of a tenth of the range (in the transformed space: the
      // grid is log-spaced for log parameters), at least one level.
      const double sd = std::max(1.0, 0.1 * (d.choices - 1));
      int step = static_cast<int>(std::lround(std::normal_distribution<double>(0, sd)(rng)));
      if (step == 0) step = std::bernoulli_distribution(0.5)(rng) ? 1 : -1;
      child[i] = std::clamp(parent[i] + step, 0, d.choices - 1);
    } else if (d.ordered) {
      // A neighbour: one level up or down (the other way at an end).
      const bool up =
          parent[i] == 0 || (parent[i] < d.choices - 1 && std::bernoulli_distribution(0.5)(rng));
      child[i] = parent[i] + (up ? 1 : -1);
    } else {
      int v = std::uniform_int_distribution<int>(0, d.choices - 2)(rng);
      child[i] = v >= parent[i] ? v + 1 : v;
    }
    if (ArchHash(DecodeArchitecture(space, child)) != parent_hash) return child;
  }
  return child;
}

Genes CrossoverGenes(const Genes& a, const Genes& b, std::mt19937_64& rng) {
  Genes c = a;
  std::bernoulli_distribution coin(0.5);
  for (size_t i = 0; i < c.size() && i < b.size(); ++i) {
    if (coin(rng)) c[i] = b[i];
  }
  return c;
}

uint64_t SpaceSize(const v1::SearchSpace& space) {
  const SpaceKind* k = KindOf(space);
  return k == nullptr ? 0 : SatMul(k->Size(space), ParameterSpaceSize(space));
}

v1::Architecture NormalizedArchitecture(const v1::Architecture& arch) {
  v1::Architecture a = arch;
  if (const SpaceKind* k = KindOf(a)) k->Normalize(&a);
  NormalizeParams(&a);
  return a;
}

std::string CanonicalEncoding(const v1::Architecture& arch) {
  // Protobuf's JSON printer writes fields in field-number order with every primitive field and
  // shortest round-trip doubles: a canonical text once defaults are filled in. The same text,
  // written directly when the architecture's fields allow (every built-in kind does).
  v1::Architecture normalized = NormalizedArchitecture(arch);
  if (std::optional<std::string> fast = FastCanonicalJson(normalized)) return *std::move(fast);
  return ProtobufCanonicalEncoding(normalized);
}

std::string ProtobufCanonicalEncoding(const v1::Architecture& normalized) {
  google::protobuf::util::JsonPrintOptions o;
  o.always_print_primitive_fields = true;
  o.preserve_proto_field_names = true;
  std::string out;
  (void)google::protobuf::util::MessageToJsonString(normalized, &out, o);
  return out;
}

std::string ArchHash(const v1::Architecture& arch) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char c : CanonicalEncoding(arch)) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  return absl::StrFormat("%016x", h);
}

InputShape ArchInputShape(const v1::Architecture& arch) {
  const SpaceKind* k = KindOf(arch);
  return k == nullptr ? InputShape{} : k->Input(NormalizedArchitecture(arch));
}

bool Scalable(const v1::Architecture& arch) {
  const SpaceKind* k = KindOf(arch);
  return k != nullptr && k->Scalable();
}

std::string TableKey(const v1::Architecture& arch) {
  const SpaceKind* k = KindOf(arch);
  return k == nullptr ? std::string() : k->TableKey(NormalizedArchitecture(arch));
}

bool HasTables(const v1::SearchSpace& space) {
  const SpaceKind* k = KindOf(space);
  return k != nullptr && k->HasTables();
}

InputShape SpaceInputShape(const v1::SearchSpace& space) {
  Genes zeros(SpaceDecisions(space).size(), 0);
  return ArchInputShape(DecodeArchitecture(space, zeros));
}

absl::Status SetResolution(v1::Architecture* arch, int resolution) {
  const SpaceKind* k = KindOf(*arch);
  if (k == nullptr) return FieldError("architecture", KindsRequired());
  NF_RETURN_IF_ERROR(CheckRange(resolution, "resolution", 8, 4096));
  return k->SetResolution(arch, resolution);
}

std::string ArchSummary(const v1::Architecture& arch) {
  const SpaceKind* k = KindOf(arch);
  if (k == nullptr) return "";
  std::string s = k->Summary(arch);
  std::string p = ParamsSummary(arch);
  if (!s.empty() && !p.empty()) s += " ";
  return s + p;
}

}  // namespace nasforge
