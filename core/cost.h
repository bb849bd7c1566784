// The layer plan of an architecture and its analytic cost, so the controller can reject a
// candidate over a MACs/params budget before any training.
//
// Convention (DESIGN.md): one multiply-add = one MAC, counted for conv (grouped and depthwise
// included) and linear layers; BN, activations, pooling and the SE gating multiply are not
// counted. Parameters are trainable tensors (BN weight and bias count, running stats do not).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "nasforge/v1/nasforge.pb.h"

namespace nasforge {

struct LayerCost {
  std::string name;  // e.g. "stages.1.0.depthwise"
  std::string kind;  // conv, linear, bn
  int in_channels = 0;
  int out_channels = 0;
  int kernel = 1;
  int stride = 1;
  int groups = 1;
  bool bias = false;
  int out_size = 1;  // output height = width
  int64_t macs = 0;
  int64_t params = 0;
};

struct ArchCost {
  int64_t macs = 0;
  int64_t params = 0;
  std::vector<LayerCost> layers;
};

// REQUIRES: ValidateArchitecture(arch).ok().
ArchCost ComputeCost(const v1::Architecture& arch);

// Squeeze width of an MBConv block's SE module (shared with the LibTorch builder).
int SqueezeChannels(int block_in_channels, double se_ratio);

// Spatial size after a "same"-padded conv with odd kernel.
inline int ConvOutSize(int in, int stride) { return (in - 1) / stride + 1; }

}  // namespace nasforge
