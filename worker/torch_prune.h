// Structured pruning's channel surgery (issue #30): the parent network's weights copied into
// the same architecture at smaller widths (core/compression.h PrunedArchitecture), whole
// channels kept or removed. Channels that must stay aligned form a group: a stage joined by
// residual additions, a block's expanded channels, a squeeze-excitation bottleneck. Each
// group's size in the pruned network comes from the pruned network itself; the channels kept
// are those whose producing filters (the conv or linear layers that write them) have the
// largest L1 norm, each layer's norms divided by their mean so that layers weigh alike; every
// tensor that reads or writes a group's channels (weights in and out, biases, BatchNorm and
// LayerNorm parameters and statistics, layer scales) is cut to the same channels.
// Internal to the worker's torch translation units (it includes <torch/torch.h>).
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "nasforge/v1/nasforge.pb.h"
#include "worker/torch_models.h"

namespace nasforge {

struct ChannelGroup {
  std::string name;  // for messages: "blocks.3.expanded", "stage1"
  // State-dict tensors and the dimension along which they hold this group's channels.
  std::vector<std::pair<std::string, int>> members;
  // The weights whose dimension-0 filters score the channels (the layers writing them).
  std::vector<std::string> producers;
};

// The channel groups of `net` built from `arch` (a built-in kind: mbconv, resnet, convnext,
// nb201, mlp). The network's input and its logits are never in a group. FAILED_PRECONDITION
// for another kind; INTERNAL when a tensor the plan names is not in `net` (a builder changed
// without its plan).
absl::StatusOr<std::vector<ChannelGroup>> ChannelGroups(const v1::Architecture& arch, NetImpl& net);

// Copies `parent`'s parameters and buffers into `child` (the same architecture pruned: the same
// tensor names, narrower) group by group. INTERNAL when the names differ, a group's members
// disagree on its size, or a tensor changed size along a dimension no group covers.
// Returns, per group, how many channels it kept of how many.
struct GroupCut {
  std::string name;
  int64_t kept = 0, of = 0;
};
absl::StatusOr<std::vector<GroupCut>> CopyPrunedWeights(NetImpl& parent, NetImpl& child,
                                                        const std::vector<ChannelGroup>& groups);

// Re-estimates every BatchNorm's running mean and variance from `batches` (train-mode forward
// passes without gradients, the statistics a cumulative average over the batches, not a moving
// one), then restores each norm's momentum and leaves `net` in eval mode. A pruned network's
// norms still hold the parent's statistics of inputs that were sums over more channels; this is
// what makes the copy usable before any fine-tuning. Returns the number of norms re-estimated.
int RecalibrateBatchNorms(NetImpl& net, const std::vector<torch::Tensor>& batches);

}  // namespace nasforge
