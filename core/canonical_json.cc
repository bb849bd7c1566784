#include "core/canonical_json.h"

#include <cfloat>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "absl/strings/str_cat.h"

namespace nasforge {
namespace {

using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::Reflection;

// protobuf's SimpleDtoa: %.15g, or %.17g when that does not read back as the same double.
void AppendDouble(double v, std::string* out) {
  char buf[32];
  snprintf(buf, sizeof(buf), "%.*g", DBL_DIG, v);
  if (std::strtod(buf, nullptr) != v) snprintf(buf, sizeof(buf), "%.*g", DBL_DIG + 2, v);
  out->append(buf);
}

// Characters protobuf's JSON printer writes as they are.
bool PlainString(const std::string& s) {
  for (unsigned char c : s) {
    if (c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' ||
        c == '\'' || c == '=') {
      return false;
    }
  }
  return true;
}

bool AppendValue(const Message& m, const Reflection& r, const FieldDescriptor* f, int index,
                 std::string* out);

bool AppendMessage(const Message& m, std::string* out) {
  const auto* d = m.GetDescriptor();
  const Reflection& r = *m.GetReflection();
  out->push_back('{');
  bool first = true;
  for (int i = 0; i < d->field_count(); ++i) {
    const FieldDescriptor* f = d->field(i);
    if (f->is_map()) return false;
    // Unset messages and unset oneof members are not printed; every other field is.
    if (!f->is_repeated() && (f->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE ||
                              f->containing_oneof() != nullptr || f->has_presence())) {
      if (!r.HasField(m, f)) continue;
    }
    if (!first) out->push_back(',');
    first = false;
    absl::StrAppend(out, "\"", f->name(), "\":");
    if (f->is_repeated()) {
      out->push_back('[');
      const int n = r.FieldSize(m, f);
      for (int j = 0; j < n; ++j) {
        if (j > 0) out->push_back(',');
        if (!AppendValue(m, r, f, j, out)) return false;
      }
      out->push_back(']');
    } else if (!AppendValue(m, r, f, -1, out)) {
      return false;
    }
  }
  out->push_back('}');
  return true;
}

// index -1: the singular field.
bool AppendValue(const Message& m, const Reflection& r, const FieldDescriptor* f, int index,
                 std::string* out) {
  const bool rep = index >= 0;
  switch (f->cpp_type()) {
    case FieldDescriptor::CPPTYPE_INT32:
      absl::StrAppend(out, rep ? r.GetRepeatedInt32(m, f, index) : r.GetInt32(m, f));
      return true;
    case FieldDescriptor::CPPTYPE_UINT32:
      absl::StrAppend(out, rep ? r.GetRepeatedUInt32(m, f, index) : r.GetUInt32(m, f));
      return true;
    case FieldDescriptor::CPPTYPE_BOOL:
      out->append((rep ? r.GetRepeatedBool(m, f, index) : r.GetBool(m, f)) ? "true" : "false");
      return true;
    case FieldDescriptor::CPPTYPE_DOUBLE: {
      const double v = rep ? r.GetRepeatedDouble(m, f, index) : r.GetDouble(m, f);
      if (!std::isfinite(v)) return false;
      AppendDouble(v, out);
      return true;
    }
    case FieldDescriptor::CPPTYPE_STRING: {
      if (f->type() == FieldDescriptor::TYPE_BYTES) return false;
      std::string scratch;
      const std::string& v = rep ? r.GetRepeatedStringReference(m, f, index, &scratch)
                                 : r.GetStringReference(m, f, &scratch);
      if (!PlainString(v)) return false;
      absl::StrAppend(out, "\"", v, "\"");
      return true;
    }
    case FieldDescriptor::CPPTYPE_MESSAGE:
      return AppendMessage(rep ? r.GetRepeatedMessage(m, f, index) : r.GetMessage(m, f), out);
    default:  // 64-bit integers (quoted), enums (names), floats: protobuf's printer
      return false;
  }
}

}  // namespace

std::optional<std::string> FastCanonicalJson(const Message& m) {
  std::string out;
  out.reserve(256);
  if (!AppendMessage(m, &out)) return std::nullopt;
  return out;
}

}  // namespace nasforge
