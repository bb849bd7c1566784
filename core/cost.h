// The layer plan of an architecture and its analytic cost, so the controller can reject a
// candidate over a MACs/params budget before any training.
//
// Convention (DESIGN.md): one multiply-add = one MAC, counted for conv (grouped and depthwise
// included) and linear layers (a linear applied at every pixel counts once per pixel);
// BN/LayerNorm, activations, pooling, residual adds and the SE gating multiply are not counted.
// Parameters are trainable tensors (BN/LN weight and bias and layer-scale vectors count, running
// statistics do not). This reproduces torchvision's published figures (tests/core/cost_test.cc).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "nasforge/v1/nasforge.pb.h"

namespace nasforge {

struct LayerCost {
  std::string name;  // e.g. "stages.1.0.depthwise"
  std::string kind;  // conv, linear, bn, ln, param
  int in_channels = 0;
  int out_channels = 0;
  int kernel = 1;
  int stride = 1;
  int groups = 1;
  bool bias = false;
  int out_size = 1;  // output height = width
  int64_t macs = 0;
  int64_t params = 0;
  int64_t activations = 0;  // output elements per example (conv, bn, linear)
};

struct ArchCost {
  int64_t macs = 0;
  int64_t params = 0;
  int64_t activations = 0;  // summed over layers, per example
  std::vector<LayerCost> layers;
};

// Output height of a conv or pool: floor((in + 2 * pad - kernel) / stride) + 1.
inline int ConvOutSize(int in, int kernel, int stride, int pad) {
  return (in + 2 * pad - kernel) / stride + 1;
}
// "Same"-padded odd kernel (pad = kernel / 2).
inline int ConvOutSize(int in, int stride) { return (in - 1) / stride + 1; }

// Accumulates layers. Each method returns the output size where it has one.
class Planner {
 public:
  int Conv(std::string name, int in, int out, int k, int stride, int pad, int groups, bool bias,
           int in_size);
  void BatchNorm(std::string name, int c, int size);
  void LayerNorm(std::string name, int c);
  // A linear layer applied `rows` times (once per pixel for ConvNeXt's pointwise layers).
  void Linear(std::string name, int in, int out, bool bias = true, int64_t rows = 1);
  void Param(std::string name, int64_t count);  // a free tensor, e.g. layer scale
  ArchCost Take() { return std::move(cost_); }

 private:
  void Add(LayerCost l);
  ArchCost cost_;
};

// REQUIRES: ValidateArchitecture(arch).ok().
ArchCost ComputeCost(const v1::Architecture& arch);

// Estimated memory to train the architecture at `batch_size` in fp32 with AdamW, in bytes:
// 16 bytes per parameter (weight, gradient, two moments) plus 8 bytes per activation element per
// example (the saved output and its gradient) times the batch. An analytic estimate, comparable
// across candidates, not a measurement (the worker reports peak_memory_bytes).
int64_t TrainingMemoryBytes(const ArchCost& cost, int batch_size);

// Squeeze width of an MBConv block's SE module (shared with the LibTorch builder):
// max(1, floor(block_in_channels * se_ratio)), torchvision's rule.
int SqueezeChannels(int block_in_channels, double se_ratio);

// torchvision's _make_divisible: round v to a multiple of `divisor`, at least `divisor`, never
// more than 10% below v. Used when scaling widths.
int MakeDivisible(double v, int divisor = 8);

}  // namespace nasforge
