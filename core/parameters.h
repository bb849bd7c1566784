// Typed hyperparameters searched together with the architecture (SearchSpace.parameters):
// validation with field paths, one decision per parameter (appended to the kind's decisions by
// search_space.cc, so every strategy searches both), decoding genes to a candidate's values
// (Architecture.params: the active parameters, ordered by name) and back, conditions, and the
// text of a value. Real parameters without a step are searched on a grid of `levels` points
// (log-spaced when log); integer ranges of more than 1024 values on a grid of 1024. Ordered
// domains (real, integer, ordinal) say so in their Decision, so mutation moves to neighbours and
// models measure distances; categorical ones are unordered.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "core/search_space.h"
#include "nasforge/v1/nasforge.pb.h"

namespace nasforge {

// Checks space.parameters: names (lower-case identifiers, unique), domains, conditions (on a
// parameter declared earlier or on one of the kind's choices, naming its values). Errors name the
// field
// ("search_space.parameters[2].real.low: must be > 0 with log").
absl::Status ValidateParameters(const v1::SearchSpace& space, const std::string& path);

// Checks the form of a candidate's values (names, finite numbers), not their membership.
absl::Status ValidateParamValues(const v1::ParamValues& values, const std::string& path);

// The architecture choices a candidate made, as conditions read them: the kind's decision name
// -> the chosen value's label (Decision::labels). Empty when no condition names a choice.
using ChoiceLabels = std::map<std::string, std::string>;
// Whether any parameter's condition names an architecture choice.
bool ConditionsOnChoices(const v1::SearchSpace& space);

// REQUIRES below: ValidateParameters(space).ok(); `choices` holds the candidate's architecture
// choices when ConditionsOnChoices(space).
// One decision per parameter, in declaration order.
std::vector<Decision> ParameterDecisions(const v1::SearchSpace& space);
// Sets arch->params from the parameters' genes (genes[0] is the first parameter's); leaves it
// unset when the space has no parameters. Inactive parameters get no value.
void DecodeParameters(const v1::SearchSpace& space, const int* genes, const ChoiceLabels& choices,
                      v1::Architecture* arch);
// The parameters' genes of `arch` (inactive ones 0); nullopt unless arch.params holds exactly
// the active parameters, each at one of its values.
std::optional<Genes> EncodeParameters(const v1::SearchSpace& space, const v1::Architecture& arch,
                                      const ChoiceLabels& choices);
// Why `arch`'s parameters are not in the space, naming the parameter (OK if they are).
absl::Status CheckParametersInSpace(const v1::SearchSpace& space, const v1::Architecture& arch,
                                    const ChoiceLabels& choices, const std::string& path);
// Number of distinct value assignments (conditions counted; saturates at UINT64_MAX).
uint64_t ParameterSpaceSize(const v1::SearchSpace& space);

// Orders the values by name; clears `params` when it holds none.
void NormalizeParams(v1::Architecture* arch);

// A value as text: the categorical value, or the number's shortest round-trip form ("0.001").
std::string ParamText(const v1::ParamValue& v);
std::string FormatNumber(double v);
// "lr=0.001 optimizer=sgd" ("" without parameters).
std::string ParamsSummary(const v1::Architecture& arch);
// The value of parameter `name`, nullptr when it has none (absent or inactive).
const v1::ParamValue* FindParam(const v1::Architecture& arch, const std::string& name);

}  // namespace nasforge
