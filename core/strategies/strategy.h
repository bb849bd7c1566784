// The ask/tell interface every search strategy implements. A strategy's state is rebuilt from
// the job's stored history: construct it with the job's spec and stored position, then Tell()
// every finished trial in the order they finished. Same seed and same results give the same
// proposals. Duplicates never reach a worker: the JobManager's admissible() rejects an
// architecture whose hash the job has seen, and the strategy proposes again.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/search_space.h"
#include "nasforge/v1/nasforge.pb.h"

namespace nasforge {

struct Proposal {
  enum class Kind {
    kCandidate,  // `arch` is admissible: train it
    kWait,       // nothing until more results arrive (e.g. compound scaling between steps)
    kDone,       // nothing more to propose; `reason` says why
  };
  Kind kind = Kind::kDone;
  v1::Architecture arch;
  std::string reason;
};

using Admissible = std::function<bool(const v1::Architecture&)>;

class Strategy {
 public:
  virtual ~Strategy() = default;
  // Proposes the next candidate. `admissible` says whether a proposal may be used (not a
  // duplicate, within the cost bounds); a strategy proposes until one is admissible or it has
  // tried `max_attempts` times (then kDone: the space looks exhausted).
  virtual Proposal Ask(const Admissible& admissible, int max_attempts) = 0;
  // A trial reached a terminal state (its metrics and curve are final).
  virtual void Tell(const v1::Trial& trial) = 0;
  // Opaque position stored with the job (Job.next_sample) so a restart resumes the sequence.
  virtual uint64_t position() const = 0;
};

// The strategy named by spec.strategy.name (core/strategies/registry.h), resuming at `position`.
// REQUIRES: ValidateJobSpec(spec).ok().
absl::StatusOr<std::unique_ptr<Strategy>> NewStrategy(const v1::JobSpec& spec, uint64_t position);

// Checks spec.strategy (a registered name, the shared options, the strategy's own checks);
// errors name the field. ValidateJobSpec calls it.
absl::Status ValidateStrategy(const v1::JobSpec& spec);

// Names the default strategy ("random") when none is given, then applies the strategy's own
// defaults. ApplyJobSpecDefaults calls it.
// A strategy name as the registry spells it: lower case, "rea" (regularized evolution, the
// NAS literature's name) is "evolution". Job specs and `nasforge bench` read names through it.
std::string CanonicalStrategyName(absl::string_view name);

void ApplyStrategyDefaults(v1::JobSpec* spec);

// --- shared by the strategies ----------------------------------------------------------------

// The trial's objective values, each oriented so that larger is better (MINIMIZE objectives
// negated); nullopt unless the trial succeeded with every objective reported.
std::optional<std::vector<double>> OrientedObjectives(const v1::JobSpec& spec,
                                                      const v1::Trial& trial);

// Total violation of spec.constraints by the trial's metrics, each relative to its bound
// (0 = feasible).
double ConstraintViolation(const v1::JobSpec& spec, const v1::Trial& trial);

// Samples until admissible (at most max_attempts); kDone with an exhaustion reason otherwise.
Proposal SampleAdmissible(const v1::SearchSpace& space, std::mt19937_64& rng,
                          const Admissible& admissible, int max_attempts);
Proposal Exhausted(int attempts);

// Genes from `make` until one decodes to an admissible architecture (at most max_attempts),
// then fresh random samples (every child `make` can produce may already be taken).
Proposal ProposeGenes(const v1::SearchSpace& space, std::mt19937_64& rng,
                      const Admissible& admissible, int max_attempts,
                      const std::function<Genes()>& make);

// ParEGO's scalarisation of several objectives (larger is better): weights drawn from `rng`
// (normalised exponentials), then minus the augmented Chebyshev distance of each vector to the
// best seen, each objective scaled by the range seen. Larger is better. The model-based
// strategies split or model by it when a job has several objectives.
std::vector<double> ParegoScalarization(const std::vector<const std::vector<double>*>& objs,
                                        std::mt19937_64& rng);

// A result as the population-based strategies keep it: genes and oriented objectives; nullopt
// unless the trial succeeded with every objective and lies in the space.
struct Scored {
  Genes genes;
  std::vector<double> obj;  // larger is better
};
std::optional<Scored> ScoreTrial(const v1::JobSpec& spec, const v1::Trial& trial);

// The built-in strategies' factories and own checks (registered in registry.cc).
std::unique_ptr<Strategy> NewRandomStrategy(const v1::JobSpec& spec, uint64_t position);
std::unique_ptr<Strategy> NewEvolutionStrategy(const v1::JobSpec& spec, uint64_t position);
std::unique_ptr<Strategy> NewNsga2Strategy(const v1::JobSpec& spec, uint64_t position);
absl::Status ValidateNsga2(const v1::JobSpec& spec);
std::unique_ptr<Strategy> NewBayesOptStrategy(const v1::JobSpec& spec, uint64_t position);
std::unique_ptr<Strategy> NewTpeStrategy(const v1::JobSpec& spec, uint64_t position);
std::unique_ptr<Strategy> NewBohbStrategy(const v1::JobSpec& spec, uint64_t position);
void ApplyBohbDefaults(v1::JobSpec* spec);
absl::StatusOr<std::unique_ptr<Strategy>> NewCompoundScalingStrategy(const v1::JobSpec& spec,
                                                                     uint64_t position);

}  // namespace nasforge
