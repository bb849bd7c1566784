#include "core/search_space.h"

#include <cmath>
#include <random>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/status.h"

namespace nasforge {
namespace {

template <typename T>
absl::Status CheckChoices(const google::protobuf::RepeatedField<T>& values, absl::string_view path,
                          T lo, T hi, bool must_be_odd = false) {
  if (values.empty()) return FieldError(path, "needs at least one choice");
  for (int i = 0; i < values.size(); ++i) {
    T v = values[i];
    if (v < lo || v > hi) {
      return FieldError(path, absl::StrCat(v, " is out of range [", lo, ", ", hi, "]"));
    }
    if constexpr (std::is_integral_v<T>) {
      if (must_be_odd && v % 2 == 0) return FieldError(path, absl::StrCat(v, " is not odd"));
    }
    for (int j = 0; j < i; ++j) {
      if (values[j] == v) return FieldError(path, absl::StrCat(v, " is listed twice"));
    }
  }
  return absl::OkStatus();
}

absl::Status CheckActivation(const std::string& a, absl::string_view path) {
  if (a.empty() || a == "silu" || a == "relu" || a == "relu6") return absl::OkStatus();
  return FieldError(path, absl::StrCat("'", a, "' is not one of silu, relu, relu6"));
}

template <typename T>
T Pick(const google::protobuf::RepeatedField<T>& choices, std::mt19937_64& rng) {
  std::uniform_int_distribution<int> d(0, choices.size() - 1);
  return choices[d(rng)];
}

uint64_t SatMul(uint64_t a, uint64_t b) {
  if (a != 0 && b > UINT64_MAX / a) return UINT64_MAX;
  return a * b;
}

}  // namespace

uint64_t MixSeed(uint64_t seed, uint64_t counter) {
  uint64_t z = seed + 0x9E3779B97F4A7C15ULL * (counter + 1);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

absl::Status ValidateSearchSpace(const v1::SearchSpace& space, absl::string_view path) {
  if (!space.has_mbconv()) {
    return FieldError(absl::StrCat(path, ".mbconv"), "a search space kind is required");
  }
  const auto& s = space.mbconv();
  std::string p = absl::StrCat(path, ".mbconv");
  if (s.resolution() < 8 || s.resolution() > 1024) {
    return FieldError(p + ".resolution",
                      absl::StrCat(s.resolution(), " is out of range [8, 1024]"));
  }
  if (s.in_channels() < 1 || s.in_channels() > 16) {
    return FieldError(p + ".in_channels",
                      absl::StrCat(s.in_channels(), " is out of range [1, 16]"));
  }
  if (s.num_classes() < 2) {
    return FieldError(p + ".num_classes", absl::StrCat(s.num_classes(), " must be >= 2"));
  }
  NF_RETURN_IF_ERROR(CheckChoices(s.stem_channels(), p + ".stem_channels", 1, 4096));
  if (s.stem_stride() != 0 && s.stem_stride() != 1 && s.stem_stride() != 2) {
    return FieldError(p + ".stem_stride", absl::StrCat(s.stem_stride(), " is not 1 or 2"));
  }
  if (s.stages().empty()) return FieldError(p + ".stages", "needs at least one stage");
  if (s.stages_size() > 12) return FieldError(p + ".stages", "at most 12 stages");
  for (int i = 0; i < s.stages_size(); ++i) {
    const auto& st = s.stages(i);
    std::string sp = absl::StrCat(p, ".stages[", i, "]");
    NF_RETURN_IF_ERROR(CheckChoices(st.kernel(), sp + ".kernel", 1, 11, /*must_be_odd=*/true));
    NF_RETURN_IF_ERROR(CheckChoices(st.expansion(), sp + ".expansion", 1, 12));
    NF_RETURN_IF_ERROR(CheckChoices(st.repeats(), sp + ".repeats", 1, 16));
    NF_RETURN_IF_ERROR(CheckChoices(st.channels(), sp + ".channels", 1, 4096));
    NF_RETURN_IF_ERROR(CheckChoices(st.se_ratio(), sp + ".se_ratio", 0.0, 1.0));
    if (st.stride() != 1 && st.stride() != 2) {
      return FieldError(sp + ".stride", absl::StrCat(st.stride(), " is not 1 or 2"));
    }
  }
  if (!s.head_channels().empty()) {
    NF_RETURN_IF_ERROR(CheckChoices(s.head_channels(), p + ".head_channels", 0, 8192));
  }
  NF_RETURN_IF_ERROR(CheckActivation(s.activation(), p + ".activation"));
  if (s.dropout() < 0 || s.dropout() >= 1) {
    return FieldError(p + ".dropout", absl::StrCat(s.dropout(), " is out of range [0, 1)"));
  }
  return absl::OkStatus();
}

absl::Status ValidateArchitecture(const v1::Architecture& arch, absl::string_view path) {
  if (!arch.has_mbconv()) {
    return FieldError(absl::StrCat(path, ".mbconv"), "an architecture kind is required");
  }
  const auto& a = arch.mbconv();
  std::string p = absl::StrCat(path, ".mbconv");
  if (a.resolution() < 8) return FieldError(p + ".resolution", "must be >= 8");
  if (a.in_channels() < 1) return FieldError(p + ".in_channels", "must be >= 1");
  if (a.num_classes() < 2) return FieldError(p + ".num_classes", "must be >= 2");
  if (a.stem_channels() < 1) return FieldError(p + ".stem_channels", "must be >= 1");
  if (a.stages().empty()) return FieldError(p + ".stages", "needs at least one stage");
  for (int i = 0; i < a.stages_size(); ++i) {
    const auto& st = a.stages(i);
    std::string sp = absl::StrCat(p, ".stages[", i, "]");
    if (st.kernel() < 1 || st.kernel() % 2 == 0) {
      return FieldError(sp + ".kernel", absl::StrCat(st.kernel(), " is not a positive odd size"));
    }
    if (st.expansion() < 1) return FieldError(sp + ".expansion", "must be >= 1");
    if (st.repeats() < 1) return FieldError(sp + ".repeats", "must be >= 1");
    if (st.channels() < 1) return FieldError(sp + ".channels", "must be >= 1");
    if (st.se_ratio() < 0 || st.se_ratio() > 1)
      return FieldError(sp + ".se_ratio", "not in [0, 1]");
    if (st.stride() != 1 && st.stride() != 2) return FieldError(sp + ".stride", "is not 1 or 2");
  }
  if (a.head_channels() < 0) return FieldError(p + ".head_channels", "must be >= 0");
  return CheckActivation(a.activation(), p + ".activation");
}

v1::Architecture SampleArchitecture(const v1::SearchSpace& space, uint64_t seed) {
  std::mt19937_64 rng(seed);
  const auto& s = space.mbconv();
  v1::Architecture arch;
  auto* a = arch.mutable_mbconv();
  a->set_resolution(s.resolution());
  a->set_in_channels(s.in_channels());
  a->set_num_classes(s.num_classes());
  a->set_stem_channels(Pick(s.stem_channels(), rng));
  a->set_stem_stride(s.stem_stride() == 0 ? 1 : s.stem_stride());
  for (const auto& st : s.stages()) {
    auto* o = a->add_stages();
    o->set_kernel(Pick(st.kernel(), rng));
    o->set_expansion(Pick(st.expansion(), rng));
    o->set_repeats(Pick(st.repeats(), rng));
    o->set_channels(Pick(st.channels(), rng));
    o->set_se_ratio(Pick(st.se_ratio(), rng));
    o->set_stride(st.stride());
  }
  a->set_head_channels(s.head_channels().empty() ? 0 : Pick(s.head_channels(), rng));
  a->set_activation(s.activation().empty() ? "silu" : s.activation());
  a->set_dropout(s.dropout());
  return arch;
}

uint64_t SpaceSize(const v1::SearchSpace& space) {
  const auto& s = space.mbconv();
  uint64_t n = std::max(1, s.stem_channels_size());
  n = SatMul(n, std::max(1, s.head_channels_size()));
  for (const auto& st : s.stages()) {
    n = SatMul(n, st.kernel_size());
    n = SatMul(n, st.expansion_size());
    n = SatMul(n, st.repeats_size());
    n = SatMul(n, st.channels_size());
    n = SatMul(n, st.se_ratio_size());
  }
  return n;
}

std::string CanonicalEncoding(const v1::Architecture& arch) {
  const auto& a = arch.mbconv();
  std::string out = absl::StrFormat("mbconv;r%d;in%d;nc%d;stem%d/%d", a.resolution(),
                                    a.in_channels(), a.num_classes(), a.stem_channels(),
                                    a.stem_stride() == 0 ? 1 : a.stem_stride());
  for (const auto& st : a.stages()) {
    absl::StrAppendFormat(&out, ";k%de%dr%dc%dse%.4fs%d", st.kernel(), st.expansion(), st.repeats(),
                          st.channels(), st.se_ratio(), st.stride());
  }
  absl::StrAppendFormat(&out, ";head%d;%s;drop%.4f", a.head_channels(),
                        a.activation().empty() ? "silu" : a.activation(), a.dropout());
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

}  // namespace nasforge
