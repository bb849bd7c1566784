// How the CLI shows jobs, trials and numbers to a person: pure functions of the messages (and of
// `now` for the progress line), so each is unit-tested. `--json` output is ProtoJson.
#pragma once

#include <string>

#include "absl/strings/string_view.h"
#include "google/protobuf/message.h"
#include "google/protobuf/repeated_ptr_field.h"
#include "nasforge/v1/nasforge.pb.h"

namespace nasforge::report {

// 1234567 -> "1.235M", 66200 -> "66.2K", 0.5 -> "0.5" (G, M, K suffixes).
std::string HumanNumber(double v);
// Seconds as "42s", "3m05s", "2h07m"; "-" for a negative (unknown) duration.
std::string HumanDuration(double seconds);
// An enum value name without its prefix, lower case: "TRIAL_SUCCEEDED" -> "succeeded".
std::string ShortState(absl::string_view enum_name);

// One progress line: bar, done/budget, running, failed, best objective, elapsed and ETA.
// `now_seconds` is Unix time (the job's create/end times are compared with it).
std::string ProgressLine(const v1::Job& job, double now_seconds);
// `nasforge status`: one "key  value" line per fact.
std::string FormatJob(const v1::Job& job);
// `nasforge jobs`: one line per job, newest first as the controller sends them.
std::string FormatJobList(const v1::ListJobsResponse& jobs);
// `nasforge candidates` and `pareto`: a table, one line per trial, with the architecture summary.
// With `profile` (a hardware target's name or profile), latency_ms is the one measured there.
std::string FormatTrials(const google::protobuf::RepeatedPtrField<v1::Trial>& trials,
                         const std::string& profile = "");
// The message as indented JSON with the .proto field names (what `--json` prints).
std::string ProtoJson(const google::protobuf::Message& message);

}  // namespace nasforge::report
