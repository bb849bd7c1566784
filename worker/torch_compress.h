// Compression of a trained network (issue #30), the pieces that work on every search-space kind
// through the layers all builders use (CountedConv, CountedLinear and the BatchNorm after them):
//  - BatchNorm folding into the conv or linear layer before it;
//  - int8 post-training quantization as a fake-quantized twin (it runs in float on any device and
//    computes what an int8 engine computes): weights per output channel symmetric int8, each
//    conv/linear input per tensor affine uint8 from the ranges observed on calibration batches;
//  - the knowledge-distillation loss.
// Internal to the worker's torch translation units (it includes <torch/torch.h>).
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "worker/torch_models.h"

namespace nasforge {

// `w` and `b` (b may be undefined: a conv without bias) folded with a BatchNorm's gamma, beta,
// running mean and variance and eps, per output channel (dim 0 of w):
//   w' = w * gamma / sqrt(var + eps),  b' = (b - mean) * gamma / sqrt(var + eps) + beta.
std::pair<torch::Tensor, torch::Tensor> FoldBatchNorm(
    const torch::Tensor& w, const torch::Tensor& b, const torch::Tensor& gamma,
    const torch::Tensor& beta, const torch::Tensor& mean, const torch::Tensor& var, double eps);

// Folds every BatchNorm that directly follows a conv or linear layer into that layer and makes
// the BatchNorm the identity. Pairs by name within a module, the built-in kinds' convention:
// "X" and "X_bn", "convK" and "bnK", "hiddenK" and "bnK", "conv" and "bn"; a BatchNorm without
// such a partner (NAS-Bench-201's after the last cell) stays. The result is checked: eval-mode
// logits on `probe` must agree with the unfolded network's within 1e-4 of their largest
// magnitude, else the network is restored and INTERNAL names the pairs (a kind registered in
// code whose names break the convention). Returns the number of pairs folded; leaves `net` in
// eval mode.
absl::StatusOr<int> FoldBatchNorms(NetImpl& net, const torch::Tensor& probe);

// int8 weights of one layer: q = clamp(round(w / scale), -127, 127) per output channel, with
// scale = max|w_c| / 127 (1 for an all-zero channel), zero point 0 (the symmetric restricted
// range ONNX Runtime and TensorRT use).
struct Int8Weights {
  torch::Tensor q;      // int8, w's shape
  torch::Tensor scale;  // fp32, [out channels]
};
Int8Weights QuantizeWeightsPerChannel(const torch::Tensor& w);
torch::Tensor Dequantize(const Int8Weights& w);  // q * scale, fp32

// What a deployed fp32 network stores: parameters and floating-point buffers at 4 bytes, without
// BatchNorms folded away (FoldBatchNorms) and without integer bookkeeping (num_batches_tracked).
int64_t DeployedFloatBytes(NetImpl& net);

// Per-tensor affine uint8 parameters for an observed range [min, max], widened to include 0 so
// that zero (padding, ReLU's floor) is exact: scale = (max - min) / 255 (1 for an empty range),
// zero_point = clamp(round(-min / scale), 0, 255).
struct Uint8Params {
  double scale = 1.0;
  int64_t zero_point = 0;
};
Uint8Params ActivationParams(double min, double max);

struct QuantizationResult {
  int layers = 0;  // conv and linear layers quantized
  // The fp32 network as deployed (parameters and float buffers at 4 bytes, BatchNorms folded
  // away not counted), and the int8 one: int8 weights, fp32 scales, biases and the rest.
  int64_t fp32_bytes = 0;
  int64_t int8_bytes = 0;
  std::vector<std::string> unobserved;  // layers no calibration batch reached (left in fp32)
};

// Turns `net` into its int8 fake-quantized twin: runs the calibration batches in eval mode
// (their inputs' ranges observed at every conv and linear layer), then every such layer
// quantizes its input to uint8 and computes with its int8 weights (dequantized). Fold
// BatchNorms first (FoldBatchNorms): quantizing before folding quantizes the wrong weights.
// INVALID_ARGUMENT without calibration batches.
absl::StatusOr<QuantizationResult> QuantizeInt8(NetImpl& net,
                                                const std::vector<torch::Tensor>& calibration);

// The int8 engines this LibTorch has, best first for this CPU: "onednn" (x86, fast with AVX-512
// VNNI), "qnnpack" (ARM, and x86 without oneDNN); empty if none.
std::vector<std::string> Int8Engines();

// Runs every conv and linear layer of a network QuantizeInt8 made on the real int8 engine
// `engine` (one of Int8Engines()): the input quantized to uint8 with its observed parameters,
// the int8 weights prepacked per output channel with the fp32 bias, the output requantized to
// uint8 from its observed range and dequantized for the fp32 operations between layers
// (activations, additions, pooling). CPU only. FAILED_PRECONDITION for an unknown engine or a
// layer without observed ranges. Returns the number of layers packed.
absl::StatusOr<int> PackInt8Engine(NetImpl& net, const std::string& engine);

// Knowledge distillation (Hinton et al. 2015):
//   alpha * T^2 * KL(softmax(teacher / T) || softmax(student / T)) + (1 - alpha) * CE(student, y)
// KL summed over classes and averaged over the batch; the teacher's logits are constants.
torch::Tensor DistillationLoss(const torch::Tensor& student_logits,
                               const torch::Tensor& teacher_logits, const torch::Tensor& targets,
                               double alpha, double temperature);

}  // namespace nasforge
