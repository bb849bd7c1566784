// YAML <-> protobuf messages (declared in core/jobspec.h). The YAML tree is converted to JSON
// while walking the message's descriptor alongside it, so that a mistake is reported where the
// user made it: the YAML line and column and the field path, an unknown key with the nearest
// known one ("did you mean"), a value of the wrong type, an enum value that is no value of its
// enum. Enum values are matched case-insensitively and by a unique prefix (`direction: max` is
// MAXIMIZE). What the walk accepts, protobuf's JSON parser then reads.
#include <google/protobuf/descriptor.h>
#include <google/protobuf/util/json_util.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/finite.h"
#include "core/jobspec.h"
#include "core/status.h"
#include "core/suggest.h"

namespace nasforge {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;

nlohmann::json ScalarToJson(const YAML::Node& n) {
  const std::string& s = n.Scalar();
  if (n.Tag() == "!") return s;  // quoted: always a string
  if (s == "true" || s == "True") return true;
  if (s == "false" || s == "False") return false;
  if (s == "~" || s == "null" || s.empty()) return nullptr;
  int64_t i;
  if (absl::SimpleAtoi(s, &i)) return i;
  uint64_t u;
  if (absl::SimpleAtoi(s, &u)) return u;
  double d;
  // NaN and infinities stay text: the protobuf parser refuses them or ValidateFinite names them.
  if (absl::SimpleAtod(s, &d) && std::isfinite(d)) return d;
  return s;
}

// Edit distance (insertions, deletions, substitutions), for "did you mean".
std::string Where(const YAML::Node& n, const std::string& path) {
  return absl::StrCat("spec: line ", n.Mark().line + 1, ", column ", n.Mark().column + 1, ": ",
                      path.empty() ? "" : path + ": ");
}

std::string Join(const std::string& path, const std::string& name) {
  return path.empty() ? name : absl::StrCat(path, ".", name);
}

// A mapping key: a plain name not already in `o`.
absl::StatusOr<std::string> Key(const YAML::Node& k, const nlohmann::json& o) {
  if (!k.IsScalar()) {
    return absl::InvalidArgumentError(
        absl::StrCat("spec: line ", k.Mark().line + 1, ": a mapping key must be a plain name"));
  }
  if (o.contains(k.Scalar())) {
    return absl::InvalidArgumentError(
        absl::StrCat("spec: line ", k.Mark().line + 1, ": duplicate key '", k.Scalar(), "'"));
  }
  return k.Scalar();
}

bool IsInteger(FieldDescriptor::CppType t) {
  return t == FieldDescriptor::CPPTYPE_INT32 || t == FieldDescriptor::CPPTYPE_INT64 ||
         t == FieldDescriptor::CPPTYPE_UINT32 || t == FieldDescriptor::CPPTYPE_UINT64;
}

// Converts a YAML tree, counting every node it expands: aliases are expanded each time they are
// used, so a few bytes of anchors can stand for billions of nodes ("billion laughs").
class YamlConverter {
 public:
  // `type`: the message the mapping `n` fills (nullptr: no schema, converted as is).
  absl::StatusOr<nlohmann::json> Message(const YAML::Node& n, int depth, const Descriptor* type,
                                         const std::string& path) {
    NF_RETURN_IF_ERROR(Count(n, depth));
    if (type == nullptr) return Plain(n, depth);
    if (n.IsNull()) return nullptr;
    if (!n.IsMap()) {
      return absl::InvalidArgumentError(
          absl::StrCat(Where(n, path), "expected a mapping (the fields of ", type->name(), ")"));
    }
    nlohmann::json o = nlohmann::json::object();
    for (const auto& kv : n) {
      NF_ASSIGN_OR_RETURN(const std::string key, Key(kv.first, o));
      const FieldDescriptor* f = type->FindFieldByName(key);
      if (f == nullptr) f = type->FindFieldByCamelcaseName(key);
      if (f == nullptr) return Unknown(kv.first, type, key, path);
      const std::string field_path = Join(path, f->name());
      nlohmann::json v;
      if (f->is_map()) {
        NF_ASSIGN_OR_RETURN(v, Plain(kv.second, depth + 1));
      } else if (f->is_repeated() && !kv.second.IsNull()) {
        if (!kv.second.IsSequence()) {
          return absl::InvalidArgumentError(
              absl::StrCat(Where(kv.second, field_path), "expected a list ([...] or '- ' items)"));
        }
        v = nlohmann::json::array();
        int i = 0;
        for (const auto& e : kv.second) {
          NF_ASSIGN_OR_RETURN(nlohmann::json x,
                              Value(e, depth + 1, f, absl::StrCat(field_path, "[", i++, "]")));
          v.push_back(std::move(x));
        }
      } else {
        NF_ASSIGN_OR_RETURN(v, Value(kv.second, depth + 1, f, field_path));
      }
      o[key] = std::move(v);
    }
    return o;
  }

 private:
  absl::Status Count(const YAML::Node& n, int depth) {
    if (++nodes_ > kMaxSpecNodes) {
      return absl::InvalidArgumentError(absl::StrCat(
          "spec: more than ", kMaxSpecNodes, " YAML nodes once aliases are expanded (line ",
          n.Mark().line + 1, "); a job spec needs a few hundred"));
    }
    if (depth > kMaxSpecDepth) {
      return absl::InvalidArgumentError(absl::StrCat("spec: nested deeper than ", kMaxSpecDepth,
                                                     " levels at line ", n.Mark().line + 1));
    }
    return absl::OkStatus();
  }

  absl::Status Unknown(const YAML::Node& at, const Descriptor* type, const std::string& key,
                       const std::string& path) {
    std::vector<std::string> names;
    for (int i = 0; i < type->field_count(); ++i) names.push_back(type->field(i)->name());
    const std::string best = Nearest(key, names);
    return absl::InvalidArgumentError(
        absl::StrCat(Where(at, path), "unknown field '", key, "' in ", type->name(),
                     !best.empty() ? absl::StrCat("; did you mean '", best, "'?")
                                   : absl::StrCat("; known: ", absl::StrJoin(names, ", "))));
  }

  // One value of field `f` (an element, for a repeated field).
  absl::StatusOr<nlohmann::json> Value(const YAML::Node& n, int depth, const FieldDescriptor* f,
                                       const std::string& path) {
    if (f->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
      const Descriptor* type = f->message_type();
      // Well-known types (Timestamp, Struct, ...) have JSON forms of their own.
      if (absl::StartsWith(type->full_name(), "google.protobuf.")) return Plain(n, depth);
      return Message(n, depth, type, path);
    }
    NF_RETURN_IF_ERROR(Count(n, depth));
    if (n.IsNull()) return nullptr;
    if (!n.IsScalar()) {
      return absl::InvalidArgumentError(absl::StrCat(
          Where(n, path), "expected a single value, not a ", n.IsMap() ? "mapping" : "list"));
    }
    nlohmann::json v = ScalarToJson(n);
    const std::string& text = n.Scalar();
    switch (f->cpp_type()) {
      case FieldDescriptor::CPPTYPE_ENUM:
        return EnumValue(n, f, path);
      case FieldDescriptor::CPPTYPE_STRING:
        // `name: 123` is the text "123"; bytes stay as written.
        return v.is_null() ? v : nlohmann::json(text);
      case FieldDescriptor::CPPTYPE_BOOL:
        if (v.is_boolean()) return v;
        if (text == "yes" || text == "no") return text == "yes";
        return absl::InvalidArgumentError(
            absl::StrCat(Where(n, path), "'", text, "' is not true or false"));
      case FieldDescriptor::CPPTYPE_DOUBLE:
      case FieldDescriptor::CPPTYPE_FLOAT:
        if (v.is_number()) return v;
        // NaN and infinities are named as such by ValidateFinite (or the parser); other text:
        if (double d; !absl::SimpleAtod(text, &d)) {
          return absl::InvalidArgumentError(
              absl::StrCat(Where(n, path), "'", text, "' is not a number"));
        }
        return v;
      default:
        if (IsInteger(f->cpp_type())) {
          if (v.is_number_integer()) return v;
          if (int64_t q; v.is_string() && absl::SimpleAtoi(text, &q)) return q;  // "12"
          if (v.is_number_float() && v.get<double>() == std::floor(v.get<double>()) &&
              std::abs(v.get<double>()) < 9e15) {
            return static_cast<int64_t>(v.get<double>());  // 1e6 for 1000000
          }
          return absl::InvalidArgumentError(
              absl::StrCat(Where(n, path), "'", text, "' is not a whole number"));
        }
        return v;
    }
  }

  // An enum value by name, case-insensitively, or by a unique prefix (MAX -> MAXIMIZE); numbers
  // pass through (protobuf's JSON form allows them).
  absl::StatusOr<nlohmann::json> EnumValue(const YAML::Node& n, const FieldDescriptor* f,
                                           const std::string& path) {
    nlohmann::json v = ScalarToJson(n);
    if (v.is_number_integer()) return v;
    const std::string want = absl::AsciiStrToUpper(n.Scalar());
    const auto* e = f->enum_type();
    std::vector<std::string> names, prefixed;
    for (int i = 0; i < e->value_count(); ++i) {
      const std::string& name = e->value(i)->name();
      if (absl::EndsWith(name, "_UNSPECIFIED")) continue;
      if (name == want) return name;
      names.push_back(name);
      if (!want.empty() && absl::StartsWith(name, want)) prefixed.push_back(name);
    }
    if (prefixed.size() == 1) return prefixed[0];
    return absl::InvalidArgumentError(absl::StrCat(Where(n, path), "'", n.Scalar(),
                                                   "' is not one of ", absl::StrJoin(names, ", "),
                                                   prefixed.size() > 1 ? " (ambiguous)" : ""));
  }

  // Any YAML, converted without a schema.
  absl::StatusOr<nlohmann::json> Plain(const YAML::Node& n, int depth) {
    NF_RETURN_IF_ERROR(Count(n, depth));
    switch (n.Type()) {
      case YAML::NodeType::Null:
      case YAML::NodeType::Undefined:
        return nullptr;
      case YAML::NodeType::Scalar:
        return ScalarToJson(n);
      case YAML::NodeType::Sequence: {
        nlohmann::json a = nlohmann::json::array();
        for (const auto& e : n) {
          NF_ASSIGN_OR_RETURN(nlohmann::json v, Plain(e, depth + 1));
          a.push_back(std::move(v));
        }
        return a;
      }
      case YAML::NodeType::Map: {
        nlohmann::json o = nlohmann::json::object();
        for (const auto& kv : n) {
          NF_ASSIGN_OR_RETURN(const std::string key, Key(kv.first, o));
          NF_ASSIGN_OR_RETURN(nlohmann::json v, Plain(kv.second, depth + 1));
          o[key] = std::move(v);
        }
        return o;
      }
    }
    return nullptr;
  }

  int64_t nodes_ = 0;
};

void EmitJson(const nlohmann::json& j, YAML::Emitter* out) {
  if (j.is_object()) {
    *out << YAML::BeginMap;
    for (const auto& [k, v] : j.items()) {
      *out << YAML::Key << k << YAML::Value;
      EmitJson(v, out);
    }
    *out << YAML::EndMap;
  } else if (j.is_array()) {
    // Lists of scalars read best inline: [3, 5, 7].
    bool flat = std::all_of(j.begin(), j.end(), [](const auto& e) { return e.is_primitive(); });
    *out << (flat ? YAML::Flow : YAML::Block) << YAML::BeginSeq;
    for (const auto& e : j) EmitJson(e, out);
    *out << YAML::EndSeq;
  } else if (j.is_string()) {
    *out << YAML::DoubleQuoted << j.get<std::string>();
  } else if (j.is_boolean()) {
    *out << j.get<bool>();
  } else if (j.is_number_integer()) {
    *out << j.get<int64_t>();
  } else if (j.is_number()) {
    *out << j.get<double>();
  } else {
    *out << YAML::Null;
  }
}

}  // namespace

std::string MessageToYaml(const google::protobuf::Message& message) {
  google::protobuf::util::JsonPrintOptions o;
  o.preserve_proto_field_names = true;
  std::string json;
  (void)google::protobuf::util::MessageToJsonString(message, &json, o);
  YAML::Emitter out;
  EmitJson(nlohmann::json::parse(json), &out);
  return out.c_str();
}

absl::Status YamlToMessage(absl::string_view yaml, google::protobuf::Message* message) {
  if (yaml.size() > kMaxSpecBytes) {
    return absl::InvalidArgumentError(absl::StrCat("spec: ", yaml.size(), " bytes; at most ",
                                                   kMaxSpecBytes, " bytes are accepted"));
  }
  nlohmann::json j;
  try {
    YAML::Node root = YAML::Load(std::string(yaml));
    if (!root.IsMap()) return absl::InvalidArgumentError("spec: the document must be a mapping");
    YamlConverter c;
    NF_ASSIGN_OR_RETURN(j, c.Message(root, 0, message->GetDescriptor(), ""));
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("spec: YAML syntax error at line ",
                                                   e.mark.line + 1, ", column ", e.mark.column + 1,
                                                   ": ", e.msg));
  }
  google::protobuf::util::JsonParseOptions opts;
  opts.ignore_unknown_fields = false;
  std::string json;
  try {
    json = j.dump();
  } catch (const nlohmann::json::exception&) {  // found by fuzz/jobspec_fuzzer
    return absl::InvalidArgumentError("spec: the document is not valid UTF-8");
  }
  auto st = google::protobuf::util::JsonStringToMessage(json, message, opts);
  if (!st.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("spec: ", st.message().as_string()));
  }
  return ValidateFinite(*message, "");
}

}  // namespace nasforge
