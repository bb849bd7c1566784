// EfficientNet-style scaling of an architecture (Tan & Le 2019): depth multiplies the blocks per
// stage (rounded up), width the channels (rounded to a multiple of `divisor`, torchvision's
// _make_divisible), resolution the input size (rounded).
#pragma once

#include "absl/status/statusor.h"
#include "nasforge/v1/nasforge.pb.h"

namespace nasforge {

// MBConv: stem, stage and head widths, stage repeats. ResNet: stem and stage widths, blocks.
// ConvNeXt: stage widths and depths. NB201: C and cells per stage. MLP: widths only (no
// resolution). REQUIRES: ValidateArchitecture(base).ok().
absl::StatusOr<v1::Architecture> ScaleArchitecture(const v1::Architecture& base, double depth,
                                                   double width, double resolution,
                                                   int divisor = 8);

}  // namespace nasforge
