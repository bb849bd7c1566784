// LibTorch modules for every search-space kind. Internal to the worker's torch translation units
// (torch_models.cc, torch_trainer.cc): it includes <torch/torch.h>, so nothing else may include
// it; the rest of the worker reaches these models through trainer.h's factory functions.
#pragma once

#include <torch/torch.h>

#include <algorithm>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "absl/status/statusor.h"
#include "core/registry.h"
#include "nasforge/v1/nasforge.pb.h"

namespace nasforge {

// A built network: forward maps [batch, C, H, W] images (an MLP flattens them) to
// [batch, num_classes] logits.
struct NetImpl : torch::nn::Module {
  virtual torch::Tensor forward(torch::Tensor x) = 0;
  // Dropout before the classifier (the recipe's `dropout`), in training mode only; a builder's
  // forward passes the classifier's input through HeadDropout.
  double head_dropout = 0;
  torch::Tensor HeadDropout(const torch::Tensor& x) {
    return head_dropout > 0 ? torch::dropout(x, head_dropout, is_training()) : x;
  }
};

// One LibTorch builder per search-space kind, by the kind's name (core/space_kind.h): the
// built-ins are in torch_models.cc's table; a program that registers a kind in code
// (core/choice_kind.h) adds its builder here. A builder gets a normalized architecture.
struct TorchBuilderEntry {
  std::string name;
  std::function<std::shared_ptr<NetImpl>(const v1::Architecture&)> build;
};
NameRegistry<TorchBuilderEntry>& TorchBuilders();

// Post-training quantization's hold on a conv or linear layer's input (worker/torch_compress.h
// drives it): off (fp32, the default: one branch per forward), observing the input's range over
// calibration batches, or fake-quantizing the input to uint8 with per-tensor affine parameters
// (quantize, round, clamp to [0, 255], dequantize: what an int8 engine's input sees).
struct InputQuant {
  enum class Mode { kOff, kObserve, kFake };
  Mode mode = Mode::kOff;
  double min = 0, max = 0;  // the observed range (valid when `observed`)
  bool observed = false;
  double out_min = 0, out_max = 0;  // the layer's output range, observed alike
  bool out_observed = false;
  double scale = 1.0;
  int64_t zero_point = 0;
  // The real int8 engine's layer (worker/torch_compress.h PackInt8Engine): when set, the layer's
  // forward is this (quantize the input, the engine's int8 conv or linear, dequantize).
  std::function<torch::Tensor(const torch::Tensor&)> engine;
  void ObserveOutput(const torch::Tensor& y) {
    if (mode != Mode::kObserve) return;
    auto mm = torch::aminmax(y.detach());
    const double lo = std::get<0>(mm).item<double>(), hi = std::get<1>(mm).item<double>();
    out_min = out_observed ? std::min(out_min, lo) : lo;
    out_max = out_observed ? std::max(out_max, hi) : hi;
    out_observed = true;
  }
  torch::Tensor Apply(const torch::Tensor& x) {
    if (mode == Mode::kOff) return x;
    if (mode == Mode::kObserve) {
      auto mm = torch::aminmax(x.detach());
      const double lo = std::get<0>(mm).item<double>(), hi = std::get<1>(mm).item<double>();
      min = observed ? std::min(min, lo) : lo;
      max = observed ? std::max(max, hi) : hi;
      observed = true;
      return x;
    }
    return torch::fake_quantize_per_tensor_affine(x, scale, zero_point, 0, 255);
  }
};

// The layers a builder uses for every conv and linear layer: CountNet counts MACs from them,
// and the trainer checks that count against the kind's analytic plan (core/cost.h).
// A conv that remembers its last output size, so MACs can be counted from the built module.
struct CountedConvImpl : torch::nn::Module {
  CountedConvImpl(int in, int out, int k, int stride, int pad, int groups, bool bias) {
    conv = register_module("conv", torch::nn::Conv2d(torch::nn::Conv2dOptions(in, out, k)
                                                         .stride(stride)
                                                         .padding(pad)
                                                         .groups(groups)
                                                         .bias(bias)));
  }
  torch::Tensor forward(const torch::Tensor& x) {
    auto y = input_quant.engine ? input_quant.engine(x) : conv->forward(input_quant.Apply(x));
    input_quant.ObserveOutput(y);
    positions = y.size(2) * y.size(3);
    return y;
  }
  int64_t Macs() const { return conv->weight.numel() * positions; }
  torch::nn::Conv2d conv{nullptr};
  int64_t positions = 0;
  InputQuant input_quant;
  // Replaces the weights (and sets a bias, making one if the conv had none): BatchNorm folding.
  void SetWeights(const torch::Tensor& weight, const torch::Tensor& bias) {
    torch::NoGradGuard no_grad;
    if (!conv->bias.defined()) {
      const auto& o = conv->options;
      auto opts = torch::nn::Conv2dOptions(o.in_channels(), o.out_channels(), o.kernel_size())
                      .stride(o.stride())
                      .padding(o.padding())
                      .dilation(o.dilation())
                      .groups(o.groups())
                      .padding_mode(o.padding_mode())
                      .bias(true);
      conv = replace_module("conv", torch::nn::Conv2d(opts));
    }
    conv->to(weight.device());
    conv->weight.copy_(weight);
    conv->bias.copy_(bias);
  }
};
TORCH_MODULE(CountedConv);

// A linear layer that remembers how many rows per sample it saw (pixels for ConvNeXt's
// pointwise layers, 1 for a classifier).
struct CountedLinearImpl : torch::nn::Module {
  CountedLinearImpl(int in, int out, bool bias = true) {
    linear =
        register_module("linear", torch::nn::Linear(torch::nn::LinearOptions(in, out).bias(bias)));
  }
  torch::Tensor forward(const torch::Tensor& x) {
    rows = x.numel() / x.size(-1) / x.size(0);
    // at::linear, as Python's nn.Linear calls it: on an N-d input it folds the bias into the
    // GEMM (one kernel). The C++ frontend's torch::nn::Linear::forward does matmul and then a
    // separate broadcast add for inputs of more than 2 dims: ConvNeXt's pointwise layers ran 36
    // extra kernels per forward, 11-31% of its GPU latency.
    if (input_quant.engine) return input_quant.engine(x);
    auto y = torch::linear(input_quant.Apply(x), linear->weight, linear->bias);
    input_quant.ObserveOutput(y);
    return y;
  }
  int64_t Macs() const { return linear->weight.numel() * rows; }
  torch::nn::Linear linear{nullptr};
  int64_t rows = 0;
  InputQuant input_quant;
  void SetWeights(const torch::Tensor& weight, const torch::Tensor& bias) {
    torch::NoGradGuard no_grad;
    if (!linear->bias.defined()) {
      auto opts = linear->options;
      opts.bias(true);
      linear = replace_module("linear", torch::nn::Linear(opts));
    }
    linear->to(weight.device());
    linear->weight.copy_(weight);
    linear->bias.copy_(bias);
  }
};
TORCH_MODULE(CountedLinear);

// REQUIRES: ValidateArchitecture(arch).ok(). FAILED_PRECONDITION naming the kind when this
// worker has no builder for it (a kind registered in code in another program).
absl::StatusOr<std::shared_ptr<NetImpl>> BuildNet(const v1::Architecture& arch);

// Parameters (from the module's tensors) and MACs (each conv/linear weight times the output
// positions seen in one forward pass of `input`), and the output's shape.
struct NetCount {
  int64_t params = 0;
  int64_t macs = 0;
  std::vector<int64_t> output_shape;
};
NetCount CountNet(NetImpl& net, const torch::Tensor& input);

}  // namespace nasforge
