// Weights and self-check of a trained network (torch_export.h).
#include "worker/torch_export.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "worker/torch_latency.h"

namespace nasforge {

c10::Dict<std::string, at::Tensor> StateDict(NetImpl& net) {
  c10::Dict<std::string, at::Tensor> d;
  for (const auto& p : net.named_parameters(/*recurse=*/true)) {
    d.insert(p.key(), p.value().detach().to(torch::kCPU).contiguous().clone());
  }
  for (const auto& b : net.named_buffers(/*recurse=*/true)) {
    d.insert(b.key(), b.value().detach().to(torch::kCPU).contiguous().clone());
  }
  return d;
}

namespace {

std::string Pickle(const c10::IValue& v) {
  std::vector<char> bytes = torch::pickle_save(v);
  return std::string(bytes.begin(), bytes.end());
}

}  // namespace

absl::Status LoadWeights(NetImpl& net, const std::string& weights) {
  try {
    c10::IValue v = torch::pickle_load(std::vector<char>(weights.begin(), weights.end()));
    if (!v.isGenericDict()) return absl::InvalidArgumentError("weights: not a state dict");
    c10::Dict<c10::IValue, c10::IValue> d = v.toGenericDict();
    torch::NoGradGuard ng;
    auto load = [&](const std::string& name, torch::Tensor& dst) -> absl::Status {
      auto it = d.find(name);
      if (it == d.end()) {
        return absl::InvalidArgumentError(absl::StrCat("weights: no tensor ", name));
      }
      const torch::Tensor src = it->value().toTensor();
      if (src.sizes() != dst.sizes()) {
        return absl::InvalidArgumentError(absl::StrCat("weights: ", name, " has shape ",
                                                       c10::str(src.sizes()), ", the network's is ",
                                                       c10::str(dst.sizes())));
      }
      dst.copy_(src);
      return absl::OkStatus();
    };
    for (auto& p : net.named_parameters(/*recurse=*/true)) {
      if (absl::Status st = load(p.key(), p.value()); !st.ok()) return st;
    }
    for (auto& b : net.named_buffers(/*recurse=*/true)) {
      if (absl::Status st = load(b.key(), b.value()); !st.ok()) return st;
    }
    return absl::OkStatus();
  } catch (const c10::Error& e) {
    return absl::InvalidArgumentError(
        absl::StrCat("weights: not a state dict: ", e.what_without_backtrace()));
  }
}

absl::StatusOr<ExportedWeights> ExportWeights(NetImpl& net, const v1::Architecture& arch,
                                              uint64_t seed) {
  try {
    ExportedWeights out;
    out.weights = Pickle(c10::IValue(StateDict(net)));
    torch::NoGradGuard ng;
    net.eval();
    auto device =
        net.parameters().empty() ? torch::Device(torch::kCPU) : net.parameters().front().device();
    auto gen = at::detail::createCPUGenerator(seed ^ 0x5eed);
    torch::Tensor inputs =
        torch::randn(InputSizes(arch, 4), gen, torch::TensorOptions().dtype(torch::kFloat32));
    torch::Tensor logits = net.forward(inputs.to(device)).to(torch::kFloat32).to(torch::kCPU);
    c10::Dict<std::string, at::Tensor> check;
    check.insert("inputs", inputs);
    check.insert("logits", logits.contiguous());
    out.check = Pickle(c10::IValue(check));
    return out;
  } catch (const c10::Error& e) {
    return absl::InternalError(absl::StrCat("exporting weights: ", e.what_without_backtrace()));
  }
}

}  // namespace nasforge
