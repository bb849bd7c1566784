// The canonical text of a record, fast: exactly what protobuf's JSON printer writes with
// always_print_primitive_fields and preserve_proto_field_names (field order, every primitive,
// empty lists, SimpleDtoa doubles), for the field types architectures use. Architecture hashes
// are FNV-1a of this text, stored with every trial, so the text must never change; protobuf's
// printer, 17% of the controller's time at 4,000 trials/s, stays the reference
// (tests/core/canonical_json_test.cc compares the two on every built-in space).
#pragma once

#include <google/protobuf/message.h>

#include <optional>
#include <string>

namespace nasforge {

// nullopt for what this writer does not cover (maps, 64-bit integers, enums, floats, non-finite
// doubles, strings needing JSON escapes): the caller falls back to protobuf's printer.
std::optional<std::string> FastCanonicalJson(const google::protobuf::Message& m);

}  // namespace nasforge
