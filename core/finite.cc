#include "core/finite.h"

#include <cmath>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/status.h"

namespace nasforge {

absl::Status ValidateFinite(const google::protobuf::Message& message, const std::string& path) {
  using google::protobuf::FieldDescriptor;
  const auto* refl = message.GetReflection();
  std::vector<const FieldDescriptor*> fields;
  refl->ListFields(message, &fields);
  for (const FieldDescriptor* f : fields) {
    std::string name = path.empty() ? f->name() : absl::StrCat(path, ".", f->name());
    int n = f->is_repeated() ? refl->FieldSize(message, f) : 1;
    for (int i = 0; i < n; ++i) {
      std::string at = f->is_repeated() && !f->is_map() ? absl::StrCat(name, "[", i, "]") : name;
      if (f->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
        const auto& sub = f->is_repeated() ? refl->GetRepeatedMessage(message, f, i)
                                           : refl->GetMessage(message, f);
        NF_RETURN_IF_ERROR(ValidateFinite(sub, at));
        continue;
      }
      double v;
      if (f->cpp_type() == FieldDescriptor::CPPTYPE_DOUBLE) {
        v = f->is_repeated() ? refl->GetRepeatedDouble(message, f, i) : refl->GetDouble(message, f);
      } else if (f->cpp_type() == FieldDescriptor::CPPTYPE_FLOAT) {
        v = f->is_repeated() ? refl->GetRepeatedFloat(message, f, i) : refl->GetFloat(message, f);
      } else {
        continue;
      }
      if (!std::isfinite(v)) return FieldError(at, "must be a finite number (not NaN or infinity)");
    }
  }
  return absl::OkStatus();
}

}  // namespace nasforge
