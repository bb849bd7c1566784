#include "worker/torch_compress.h"

#include <ATen/core/dispatch/Dispatcher.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"

namespace nasforge {
namespace {

// A BatchNorm of either rank, as the tensors folding needs.
struct Norm {
  torch::Tensor weight, bias, mean, var;
  double eps = 1e-5;
};

std::optional<Norm> AsNorm(const std::shared_ptr<torch::nn::Module>& m) {
  if (auto bn = std::dynamic_pointer_cast<torch::nn::BatchNorm2dImpl>(m)) {
    return Norm{bn->weight, bn->bias, bn->running_mean, bn->running_var, bn->options.eps()};
  }
  if (auto bn = std::dynamic_pointer_cast<torch::nn::BatchNorm1dImpl>(m)) {
    return Norm{bn->weight, bn->bias, bn->running_mean, bn->running_var, bn->options.eps()};
  }
  return std::nullopt;
}

// The name of the layer a BatchNorm called `bn` folds into, by the builders' convention.
std::vector<std::string> PartnerNames(const std::string& bn) {
  if (absl::EndsWith(bn, "_bn")) return {std::string(absl::StripSuffix(bn, "_bn"))};
  if (bn == "bn") return {"conv"};
  if (bn.size() > 2 && absl::StartsWith(bn, "bn") &&
      std::all_of(bn.begin() + 2, bn.end(), [](char c) { return std::isdigit(c) != 0; })) {
    return {"conv" + bn.substr(2), "hidden" + bn.substr(2)};
  }
  return {};
}

// A conv or linear layer's weight and bias, and how to set them.
struct Layer {
  std::string name;
  torch::Tensor weight, bias;  // bias undefined: none
  std::function<void(const torch::Tensor&, const torch::Tensor&)> set;
  InputQuant* input = nullptr;
};

std::optional<Layer> AsLayer(const std::string& name, const std::shared_ptr<torch::nn::Module>& m) {
  if (auto c = std::dynamic_pointer_cast<CountedConvImpl>(m)) {
    return Layer{name, c->conv->weight, c->conv->bias,
                 [c](const torch::Tensor& w, const torch::Tensor& b) { c->SetWeights(w, b); },
                 &c->input_quant};
  }
  if (auto l = std::dynamic_pointer_cast<CountedLinearImpl>(m)) {
    return Layer{name, l->linear->weight, l->linear->bias,
                 [l](const torch::Tensor& w, const torch::Tensor& b) { l->SetWeights(w, b); },
                 &l->input_quant};
  }
  return std::nullopt;
}

std::vector<Layer> Layers(NetImpl& net) {
  std::vector<Layer> out;
  for (const auto& item : net.named_modules()) {
    if (auto l = AsLayer(item.key(), item.value())) out.push_back(std::move(*l));
  }
  return out;
}

// A BatchNorm that FoldBatchNorms made the identity.
bool IsIdentityNorm(const Norm& n) {
  return n.weight.eq(1).all().item<bool>() && n.bias.eq(0).all().item<bool>() &&
         n.mean.eq(0).all().item<bool>() &&
         (n.var - (1 - n.eps)).abs().max().item<double>() < 1e-12;
}

torch::Tensor Logits(NetImpl& net, const torch::Tensor& x) {
  torch::NoGradGuard no_grad;
  net.eval();
  return net.forward(x).to(torch::kFloat32);
}

}  // namespace

int64_t DeployedFloatBytes(NetImpl& net) {
  int64_t bytes = 0;
  for (const auto& m : net.modules()) {
    if (auto norm = AsNorm(m); norm && IsIdentityNorm(*norm)) continue;
    for (const auto& t : m->parameters(/*recurse=*/false)) bytes += 4 * t.numel();
    for (const auto& t : m->buffers(/*recurse=*/false)) {
      if (t.is_floating_point()) bytes += 4 * t.numel();
    }
  }
  return bytes;
}

std::pair<torch::Tensor, torch::Tensor> FoldBatchNorm(
    const torch::Tensor& w, const torch::Tensor& b, const torch::Tensor& gamma,
    const torch::Tensor& beta, const torch::Tensor& mean, const torch::Tensor& var, double eps) {
  torch::NoGradGuard no_grad;
  torch::Tensor k = gamma / torch::sqrt(var + eps);  // [out]
  std::vector<int64_t> shape(w.dim(), 1);
  shape[0] = -1;
  torch::Tensor folded_w = w * k.reshape(shape);
  torch::Tensor base = b.defined() ? b : torch::zeros_like(mean);
  torch::Tensor folded_b = (base - mean) * k + beta;
  return {folded_w, folded_b};
}

absl::StatusOr<int> FoldBatchNorms(NetImpl& net, const torch::Tensor& probe) {
  torch::NoGradGuard no_grad;
  const torch::Tensor before = Logits(net, probe);
  struct Pair {
    Layer layer;
    std::string bn_name;
    Norm norm;
    Layer saved;  // the layer's tensors before folding
    Norm saved_norm;
  };
  std::vector<Pair> pairs;
  for (const auto& parent : net.named_modules()) {
    std::map<std::string, std::shared_ptr<torch::nn::Module>> children;
    for (const auto& c : parent.value()->named_children()) children[c.key()] = c.value();
    for (const auto& [name, child] : children) {
      auto norm = AsNorm(child);
      if (!norm) continue;
      for (const std::string& partner : PartnerNames(name)) {
        auto it = children.find(partner);
        if (it == children.end()) continue;
        const std::string prefix = parent.key().empty() ? "" : parent.key() + ".";
        auto layer = AsLayer(prefix + partner, it->second);
        if (!layer) continue;
        Layer saved = *layer;
        saved.weight = layer->weight.clone();
        saved.bias = layer->bias.defined() ? layer->bias.clone() : torch::Tensor();
        Norm saved_norm{norm->weight.clone(), norm->bias.clone(), norm->mean.clone(),
                        norm->var.clone(), norm->eps};
        pairs.push_back({std::move(*layer), prefix + name, *norm, std::move(saved), saved_norm});
        break;
      }
    }
  }
  for (Pair& p : pairs) {
    auto [w, b] = FoldBatchNorm(p.layer.weight, p.layer.bias, p.norm.weight, p.norm.bias,
                                p.norm.mean, p.norm.var, p.norm.eps);
    p.layer.set(w, b);
    // The identity in eval mode: (x - 0) / sqrt((1 - eps) + eps) * 1 + 0.
    p.norm.weight.fill_(1);
    p.norm.bias.fill_(0);
    p.norm.mean.fill_(0);
    p.norm.var.fill_(1 - p.norm.eps);
  }
  const torch::Tensor after = Logits(net, probe);
  const double scale = std::max(before.abs().max().item<double>(), 1e-6);
  const double diff = (after - before).abs().max().item<double>();
  if (diff <= 1e-4 * scale) return static_cast<int>(pairs.size());
  std::vector<std::string> names;
  for (Pair& p : pairs) {
    p.layer.set(p.saved.weight,
                p.saved.bias.defined() ? p.saved.bias : torch::zeros_like(p.saved_norm.mean));
    p.norm.weight.copy_(p.saved_norm.weight);
    p.norm.bias.copy_(p.saved_norm.bias);
    p.norm.mean.copy_(p.saved_norm.mean);
    p.norm.var.copy_(p.saved_norm.var);
    names.push_back(absl::StrCat(p.layer.name, "+", p.bn_name));
  }
  return absl::InternalError(absl::StrCat(
      "folding BatchNorms changed the logits by ", diff, " (largest logit ", scale,
      "): a BatchNorm does not directly follow the layer its name pairs it with; pairs: ",
      absl::StrJoin(names, ", "), "; the network is unchanged"));
}

Int8Weights QuantizeWeightsPerChannel(const torch::Tensor& w) {
  torch::NoGradGuard no_grad;
  torch::Tensor flat = w.detach().to(torch::kFloat32).reshape({w.size(0), -1});
  torch::Tensor maxabs = std::get<0>(flat.abs().max(1));
  torch::Tensor scale = torch::where(maxabs > 0, maxabs / 127.0, torch::ones_like(maxabs));
  std::vector<int64_t> shape(w.dim(), 1);
  shape[0] = -1;
  torch::Tensor q =
      torch::clamp(torch::round(w.to(torch::kFloat32) / scale.reshape(shape)), -127, 127)
          .to(torch::kInt8);
  return {q, scale};
}

torch::Tensor Dequantize(const Int8Weights& w) {
  std::vector<int64_t> shape(w.q.dim(), 1);
  shape[0] = -1;
  return w.q.to(torch::kFloat32) * w.scale.reshape(shape);
}

Uint8Params ActivationParams(double min, double max) {
  min = std::min(min, 0.0);
  max = std::max(max, 0.0);
  Uint8Params p;
  if (max - min <= 0) return p;
  p.scale = (max - min) / 255.0;
  p.zero_point = std::clamp<int64_t>(std::llround(-min / p.scale), 0, 255);
  return p;
}

absl::StatusOr<QuantizationResult> QuantizeInt8(NetImpl& net,
                                                const std::vector<torch::Tensor>& calibration) {
  if (calibration.empty()) {
    return absl::InvalidArgumentError("calibration: at least one batch is needed");
  }
  torch::NoGradGuard no_grad;
  std::vector<Layer> layers = Layers(net);
  QuantizationResult r;
  r.fp32_bytes = DeployedFloatBytes(net);
  for (Layer& l : layers) {
    l.input->mode = InputQuant::Mode::kObserve;
    l.input->observed = false;
    l.input->out_observed = false;
    l.input->engine = nullptr;
  }
  net.eval();
  for (const auto& batch : calibration) net.forward(batch);
  r.int8_bytes = r.fp32_bytes;
  for (Layer& l : layers) {
    if (!l.input->observed) {
      l.input->mode = InputQuant::Mode::kOff;
      r.unobserved.push_back(l.name);
      continue;
    }
    const Uint8Params a = ActivationParams(l.input->min, l.input->max);
    l.input->scale = a.scale;
    l.input->zero_point = a.zero_point;
    l.input->mode = InputQuant::Mode::kFake;
    Int8Weights q = QuantizeWeightsPerChannel(l.weight);
    l.weight.copy_(Dequantize(q).to(l.weight.dtype()));
    // 4 bytes per weight become 1, plus one fp32 scale per output channel.
    r.int8_bytes -= 3 * l.weight.numel();
    r.int8_bytes += 4 * q.scale.numel();
    ++r.layers;
  }
  return r;
}

std::vector<std::string> Int8Engines() {
  std::vector<std::string> out;
  const auto& have = at::globalContext().supportedQEngines();
  for (const auto& [name, e] : {std::pair<const char*, at::QEngine>{"onednn", at::QEngine::ONEDNN},
                                {"qnnpack", at::QEngine::QNNPACK}}) {
    if (std::find(have.begin(), have.end(), e) != have.end()) out.push_back(name);
  }
  return out;
}

absl::StatusOr<int> PackInt8Engine(NetImpl& net, const std::string& engine) {
  const std::vector<std::string> have = Int8Engines();
  if (std::find(have.begin(), have.end(), engine) == have.end()) {
    return absl::FailedPreconditionError(
        absl::StrCat("int8 engine '", engine,
                     "' is not in this LibTorch (it has: ", absl::StrJoin(have, ", "), ")"));
  }
  at::globalContext().setQEngine(engine == "onednn" ? at::QEngine::ONEDNN : at::QEngine::QNNPACK);
  static const c10::OperatorHandle conv_prepack =
      c10::Dispatcher::singleton().findSchemaOrThrow("quantized::conv2d_prepack", "");
  static const c10::OperatorHandle conv_run =
      c10::Dispatcher::singleton().findSchemaOrThrow("quantized::conv2d", "new");
  static const c10::OperatorHandle linear_prepack =
      c10::Dispatcher::singleton().findSchemaOrThrow("quantized::linear_prepack", "");
  static const c10::OperatorHandle linear_run =
      c10::Dispatcher::singleton().findSchemaOrThrow("quantized::linear", "");
  torch::NoGradGuard no_grad;
  int packed = 0;
  for (const auto& item : net.named_modules()) {
    const std::shared_ptr<torch::nn::Module>& m = item.value();
    auto conv = std::dynamic_pointer_cast<CountedConvImpl>(m);
    auto linear = std::dynamic_pointer_cast<CountedLinearImpl>(m);
    if (!conv && !linear) continue;
    InputQuant& iq = conv ? conv->input_quant : linear->input_quant;
    if (!iq.observed || !iq.out_observed) {
      return absl::FailedPreconditionError(absl::StrCat("int8 engine: layer ", item.key(),
                                                        " has no observed input and output "
                                                        "ranges (calibrate with QuantizeInt8)"));
    }
    const torch::Tensor w = (conv ? conv->conv->weight : linear->linear->weight).detach().cpu();
    const torch::Tensor b = conv ? conv->conv->bias : linear->linear->bias;
    const c10::optional<at::Tensor> bias =
        b.defined() ? c10::optional<at::Tensor>(b.detach().cpu().contiguous()) : c10::nullopt;
    const Int8Weights q = QuantizeWeightsPerChannel(w);
    const torch::Tensor qw =
        torch::quantize_per_channel(w.contiguous(), q.scale.to(torch::kDouble),
                                    torch::zeros({w.size(0)}, torch::kLong), 0, torch::kQInt8);
    const Uint8Params in = ActivationParams(iq.min, iq.max);
    const Uint8Params out = ActivationParams(iq.out_min, iq.out_max);
    std::vector<c10::IValue> stack;
    if (conv) {
      const auto& o = conv->conv->options;
      const auto pair = [](const torch::ExpandingArray<2>& a) {
        return c10::List<int64_t>({(*a)[0], (*a)[1]});
      };
      const auto* pad = c10::get_if<torch::ExpandingArray<2>>(&o.padding());
      if (pad == nullptr) {
        return absl::FailedPreconditionError(
            absl::StrCat("int8 engine: layer ", item.key(), " pads by name, not by size"));
      }
      stack = {qw, bias, pair(o.stride()), pair(*pad), pair(o.dilation()), o.groups()};
      conv_prepack.callBoxed(&stack);
    } else {
      stack = {qw, bias};
      linear_prepack.callBoxed(&stack);
    }
    const c10::IValue weights = stack[0];
    const bool is_conv = conv != nullptr;
    iq.engine = [weights, in, out, is_conv](const torch::Tensor& x) {
      torch::Tensor qx =
          torch::quantize_per_tensor(x.contiguous(), in.scale, in.zero_point, torch::kQUInt8);
      std::vector<c10::IValue> s = {qx, weights, out.scale, out.zero_point};
      (is_conv ? conv_run : linear_run).callBoxed(&s);
      return s[0].toTensor().dequantize();
    };
    ++packed;
  }
  return packed;
}

torch::Tensor DistillationLoss(const torch::Tensor& student_logits,
                               const torch::Tensor& teacher_logits, const torch::Tensor& targets,
                               double alpha, double temperature) {
  const torch::Tensor s = torch::log_softmax(student_logits / temperature, 1);
  const torch::Tensor t = torch::softmax(teacher_logits.detach() / temperature, 1);
  const torch::Tensor kl = (t * (torch::log(t.clamp_min(1e-12)) - s)).sum(1).mean();
  const torch::Tensor ce = torch::nll_loss(torch::log_softmax(student_logits, 1), targets);
  return alpha * temperature * temperature * kl + (1 - alpha) * ce;
}

}  // namespace nasforge
