// An export bundle: a directory a user can take anywhere and load with PyTorch alone.
//   architecture.json  the canonical architecture (its FNV-1a hash is the trial's arch_hash)
//   model.py           nn.Module builders for every search-space kind + load(dir)
//   weights.pt         the trained state dict (torch.load gives a dict of tensors)
//   check.pt           4 inputs and the trained model's logits for them (the worker's)
//   metrics.json       the trial: metrics, curve, hardware profile, job and trial ids
//   README.md          how to load it, and the check that it is the same model
#pragma once

#include <string>

#include "absl/status/status.h"
#include "nasforge/v1/nasforge.pb.h"

namespace nasforge {

// The contents of model.py (export/nasforge_model.py, compiled in).
const char* PyTorchModelSource();

// Writes the bundle of `trial` into `dir`, atomically: into a sibling temporary directory,
// renamed into place at the end. FAILED_PRECONDITION if `dir` exists and is not empty (unless
// `overwrite`); INVALID_ARGUMENT if the trial's architecture does not hash to its arch_hash or
// the weights are empty.
absl::Status WriteExportBundle(const std::string& dir, const v1::Trial& trial,
                               const std::string& weights, const std::string& check,
                               bool overwrite = false);

}  // namespace nasforge
