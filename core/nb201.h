// NAS-Bench-201 arch strings: "|op~0|+|op~0|op~1|+|op~0|op~1|op~2|", edges in the order
// (1<-0), (2<-0), (2<-1), (3<-0), (3<-1), (3<-2).
#pragma once

#include <array>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace nasforge {

// none, skip_connect, nor_conv_1x1, nor_conv_3x3, avg_pool_3x3 (the benchmark's op codes 0..4).
const std::vector<std::string>& NB201Ops();

absl::StatusOr<std::array<std::string, 6>> ParseNB201Cell(const std::string& cell);
std::string FormatNB201Cell(const std::array<std::string, 6>& ops);

}  // namespace nasforge
