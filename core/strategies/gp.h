// Gaussian-process regression over decision vectors (the genes of a search space), with an
// exponentiated kernel with one weight per decision (ARD):
//   k(x, x') = s2 * exp(-sum_d w_d * dist_d(x_d, x'_d))  (+ noise on the diagonal),
// dist_d the Hamming distance [x_d != x'_d] for categorical decisions and |x_d - x'_d| / (L_d - 1)
// for ordered ones (a hyperparameter's L_d values: near values are similar).
// Targets are standardised; log w_d, log s2 and log noise are fitted by maximising the log
// marginal likelihood with Adam on its analytic gradient. Linear algebra: Eigen.
#pragma once

#include <Eigen/Dense>
#include <vector>

#include "core/search_space.h"

namespace nasforge {

class CategoricalGP {
 public:
  explicit CategoricalGP(int dims);  // every decision categorical
  explicit CategoricalGP(const std::vector<Decision>& decisions);
  // Back to the initial hyperparameters (so a fit depends only on its data).
  void Reset();
  // Fits hyperparameters (warm-started from the previous fit) and the posterior.
  // `iterations` of Adam; 0 keeps the current hyperparameters.
  void Fit(const std::vector<Genes>& x, const std::vector<double>& y, int iterations);
  // Posterior mean and standard deviation of the latent function, in the units of y.
  void Predict(const Genes& x, double* mean, double* stddev) const;
  // The same for many points at once (one triangular solve with many right-hand sides).
  void PredictMany(const std::vector<Genes>& xs, std::vector<double>* mean,
                   std::vector<double>* stddev) const;
  double LogMarginalLikelihood() const { return lml_; }
  const std::vector<double>& weights() const { return w_; }
  double noise() const { return noise_; }

 private:
  void Factor();  // K, its Cholesky factor and alpha for the current hyperparameters
  double Kernel(const Genes& a, const Genes& b) const;
  double Distance(const Genes& a, const Genes& b, int d) const;

  int dims_;
  std::vector<double> w_;
  std::vector<double> scale_;  // 1 / (L_d - 1) for ordered decisions, 0 for categorical
  double s2_ = 1.0, noise_ = 0.1;
  std::vector<Genes> x_;
  Eigen::VectorXd y_;  // standardised
  double y_mean_ = 0, y_scale_ = 1;
  Eigen::LLT<Eigen::MatrixXd> llt_;
  Eigen::VectorXd alpha_;
  double lml_ = 0;
};

// Expected improvement over `best` for a Gaussian with (mean, stddev); maximisation.
double ExpectedImprovement(double mean, double stddev, double best, double xi = 0.0);

}  // namespace nasforge
