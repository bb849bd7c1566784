// A trained network's weights in a form Python's torch.load reads without nasforge, and a
// self-check (fixed inputs and the network's logits for them) that lets the export bundle's
// reader prove it rebuilt the same model. Internal to the worker's torch translation units.
#pragma once

#include <torch/torch.h>

#include <string>

#include "absl/status/statusor.h"
#include "nasforge/v1/nasforge.pb.h"
#include "worker/torch_models.h"

namespace nasforge {

struct ExportedWeights {
  // torch::pickle_save of a dict {state_dict name: fp32 CPU tensor} (parameters and buffers, the
  // names Python's state_dict() uses). A module saved with torch::save is a TorchScript archive
  // Python's torch.load cannot read (pytorch#33811); a pickled dict of tensors is the format
  // torch.save writes for a state_dict, so torch.load returns a plain dict.
  std::string weights;
  // torch::pickle_save of {"inputs": [4, ...] fp32, "logits": [4, classes] fp32}, eval mode.
  std::string check;
};

// REQUIRES: net built from `arch` (BuildNet). Leaves `net` in eval mode on its device.
absl::StatusOr<ExportedWeights> ExportWeights(NetImpl& net, const v1::Architecture& arch,
                                              uint64_t seed);

// Loads ExportedWeights.weights into `net` (built from the same architecture): every parameter
// and buffer by name, on the net's device. INVALID_ARGUMENT naming the tensor that is missing or
// of another shape (weights of another architecture).
absl::Status LoadWeights(NetImpl& net, const std::string& weights);

// The state dict of `net` (names -> tensors, as Python's state_dict()).
c10::Dict<std::string, at::Tensor> StateDict(NetImpl& net);

}  // namespace nasforge
