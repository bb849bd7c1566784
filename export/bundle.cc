#include "export/bundle.h"

#include <filesystem>
#include <fstream>
#include <system_error>

#include "absl/strings/str_cat.h"
#include "core/search_space.h"
#include "google/protobuf/util/json_util.h"

namespace nasforge {
namespace {

namespace fs = std::filesystem;

absl::Status WriteFile(const fs::path& p, const std::string& bytes) {
  std::ofstream f(p, std::ios::binary | std::ios::trunc);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  f.close();
  if (!f) return absl::InternalError(absl::StrCat("cannot write ", p.string()));
  return absl::OkStatus();
}

std::string Readme(const v1::Trial& t) {
  return absl::StrCat(
      "# nasforge export: job ", t.job_id(), ", trial ", t.id(), "\n\n", "Architecture hash `",
      t.arch_hash(), "`, trained by a `", t.hardware_profile(), "` worker. Needs only PyTorch:\n\n",
      "```python\n", "import torch, model\n",
      "net = model.load(\".\")                 # architecture.json + weights.pt, eval mode\n",
      "check = torch.load(\"check.pt\")         # inputs and the worker's logits for them\n",
      "with torch.no_grad():\n",
      "    print((net(check[\"inputs\"]) - check[\"logits\"]).abs().max())"
      "  # ~1e-6\n",
      "```\n\n",
      "Inputs are `[batch] + model.input_shape(arch)` float32, normalised as in "
      "training (Fashion-MNIST: (x/255 - 0.2860) / 0.3530).\n",
      "ONNX: `torch.onnx.export(net, check[\"inputs\"], \"model.onnx\")`.\n",
      "metrics.json holds the trial as the controller reports it (metrics, curve).\n");
}

}  // namespace

absl::Status WriteExportBundle(const std::string& dir, const v1::Trial& trial,
                               const std::string& weights, const std::string& check,
                               bool overwrite) {
  if (weights.empty()) return absl::InvalidArgumentError("weights: empty");
  if (ArchHash(trial.architecture()) != trial.arch_hash()) {
    return absl::InvalidArgumentError(
        absl::StrCat("trial.architecture: hashes to ", ArchHash(trial.architecture()),
                     ", not the trial's arch_hash ", trial.arch_hash()));
  }
  const fs::path out(dir);
  std::error_code ec;
  if (fs::exists(out, ec) && !fs::is_empty(out, ec) && !overwrite) {
    return absl::FailedPreconditionError(
        absl::StrCat(dir, " exists and is not empty: pick another --out, or pass --overwrite"));
  }
  const fs::path parent = out.has_parent_path() ? out.parent_path() : fs::path(".");
  fs::create_directories(parent, ec);
  const fs::path tmp = parent / absl::StrCat(".", out.filename().string(), ".tmp");
  fs::remove_all(tmp, ec);
  if (!fs::create_directories(tmp, ec)) {
    return absl::InternalError(absl::StrCat("cannot create ", tmp.string(), ": ", ec.message()));
  }
  google::protobuf::util::JsonPrintOptions jo;
  jo.add_whitespace = true;
  jo.preserve_proto_field_names = true;
  std::string metrics_json;
  (void)google::protobuf::util::MessageToJsonString(trial, &metrics_json, jo);
  for (absl::Status s :
       {WriteFile(tmp / "architecture.json", CanonicalEncoding(trial.architecture()) + "\n"),
        WriteFile(tmp / "model.py", PyTorchModelSource()), WriteFile(tmp / "weights.pt", weights),
        check.empty() ? absl::OkStatus() : WriteFile(tmp / "check.pt", check),
        WriteFile(tmp / "metrics.json", metrics_json),
        WriteFile(tmp / "README.md", Readme(trial))}) {
    if (!s.ok()) {
      fs::remove_all(tmp, ec);
      return s;
    }
  }
  fs::remove_all(out, ec);
  fs::rename(tmp, out, ec);
  if (ec) {
    return absl::InternalError(absl::StrCat("cannot move the bundle to ", dir, ": ", ec.message()));
  }
  return absl::OkStatus();
}

}  // namespace nasforge
