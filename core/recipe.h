// The built-in trainer's recipe: a job's Training settings, overridden by a candidate's
// hyperparameters (Architecture.params) under the names in RecipeParams() -- the one table of
// what the LibTorch trainer binds (learning rate, weight decay, batch size, optimizer, momentum,
// Nesterov, schedule, warm-up, label smoothing, dropout before the classifier, augmentation,
// mixed precision). The controller checks a job's parameters against it at submission (jobs the
// built-in trainer runs refuse other names; external workers and tables receive any name), and
// the worker resolves each trial's recipe with it. No LibTorch here: unit-tested logic.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "nasforge/v1/nasforge.pb.h"

namespace nasforge {

struct Recipe {
  double learning_rate = 0.002;
  double weight_decay = 1e-4;
  int batch_size = 128;
  std::string optimizer = "adamw";  // adamw | sgd (heavy-ball momentum, optionally Nesterov)
  double momentum = 0.9;            // sgd
  bool nesterov = false;            // sgd
  // constant | cosine (to 0) | step (x0.1 at 50% and 75% of training) | onecycle (rise from
  // lr/25 over the first 30%, then cosine to lr/1e4; it replaces the warm-up)
  std::string schedule = "cosine";
  double warmup_epochs = 0;  // linear rise from 0 over these epochs (constant, cosine, step)
  double label_smoothing = 0;
  double dropout = 0;  // before the classifier
  bool augment = false;
  int random_crop_padding = 0;
  bool horizontal_flip = false;
  std::string precision = "fp32";  // fp32 | bf16 (autocast where the device has it: CUDA)
};

// One name the built-in trainer binds.
struct RecipeParam {
  std::string name;
  std::string help;
  std::vector<std::string> choices;  // a word parameter's values; empty: a number
  double min = 0, max = 0;           // a number's range (inclusive)
  bool integer = false;
};
const std::vector<RecipeParam>& RecipeParams();

// Whether the built-in trainer runs jobs of this data set (its parameters must be recipe names).
bool BuiltInTrainerDataset(const std::string& dataset);

// Checks each parameter of `space` against RecipeParams(): a known name, and every value its
// domain can take within the name's range or choices. Errors name the field
// ("search_space.parameters[2].name: the built-in trainer has no parameter 'lr' (...)").
absl::Status ValidateRecipeParameters(const v1::SearchSpace& space, const std::string& path);

// The recipe of one trial: `training`, then each of arch.params. INVALID_ARGUMENT naming
// "architecture.params[NAME]" for a name or value the trainer does not take.
absl::StatusOr<Recipe> ResolveRecipe(const v1::Training& training, const v1::Architecture& arch);

// The learning rate at optimizer step `step` (0-based) of `total_steps`.
double LearningRateAt(const Recipe& r, int64_t step, int64_t steps_per_epoch, int64_t total_steps);

}  // namespace nasforge
