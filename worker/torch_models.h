// LibTorch modules for every search-space kind. Internal to the worker's torch translation units
// (torch_models.cc, torch_trainer.cc): it includes <torch/torch.h>, so nothing else may include
// it; the rest of the worker reaches these models through trainer.h's factory functions.
#pragma once

#include <torch/torch.h>

#include <memory>

#include "nasforge/v1/nasforge.pb.h"

namespace nasforge {

// A built network: forward maps [batch, C, H, W] images (an MLP flattens them) to
// [batch, num_classes] logits.
struct NetImpl : torch::nn::Module {
  virtual torch::Tensor forward(torch::Tensor x) = 0;
};

// REQUIRES: ValidateArchitecture(arch).ok().
std::shared_ptr<NetImpl> BuildNet(const v1::Architecture& arch);

// Parameters (from the module's tensors) and MACs (each conv/linear weight times the output
// positions seen in one forward pass of `input`), and the output's shape.
struct NetCount {
  int64_t params = 0;
  int64_t macs = 0;
  std::vector<int64_t> output_shape;
};
NetCount CountNet(NetImpl& net, const torch::Tensor& input);

}  // namespace nasforge
