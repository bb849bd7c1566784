#include "core/strategies/gp.h"

#include <cmath>
#include <cstdlib>

namespace nasforge {

CategoricalGP::CategoricalGP(int dims) : dims_(dims), w_(dims, 0.5), scale_(dims, 0.0) {}

CategoricalGP::CategoricalGP(const std::vector<Decision>& decisions)
    : CategoricalGP(static_cast<int>(decisions.size())) {
  for (int d = 0; d < dims_; ++d) {
    if (decisions[d].ordered && decisions[d].choices > 1)
      scale_[d] = 1.0 / (decisions[d].choices - 1);
  }
}

double CategoricalGP::Distance(const Genes& a, const Genes& b, int d) const {
  if (scale_[d] > 0) return std::abs(a[d] - b[d]) * scale_[d];
  return a[d] != b[d] ? 1.0 : 0.0;
}

void CategoricalGP::Reset() {
  w_.assign(dims_, 0.5);
  s2_ = 1.0;
  noise_ = 0.1;
}

double CategoricalGP::Kernel(const Genes& a, const Genes& b) const {
  double s = 0;
  for (int d = 0; d < dims_; ++d) s += w_[d] * Distance(a, b, d);
  return s2_ * std::exp(-s);
}

void CategoricalGP::Factor() {
  const int n = static_cast<int>(x_.size());
  Eigen::MatrixXd k(n, n);
  for (int i = 0; i < n; ++i) {
    for (int j = 0; j <= i; ++j) k(i, j) = k(j, i) = Kernel(x_[i], x_[j]);
    k(i, i) += noise_ + 1e-8;
  }
  llt_.compute(k);
  alpha_ = llt_.solve(y_);
  double logdet = 0;
  const Eigen::MatrixXd& l = llt_.matrixLLT();
  for (int i = 0; i < n; ++i) logdet += 2 * std::log(l(i, i));
  lml_ = -0.5 * y_.dot(alpha_) - 0.5 * logdet - 0.5 * n * std::log(2 * M_PI);
}

void CategoricalGP::Fit(const std::vector<Genes>& x, const std::vector<double>& y, int iterations) {
  const int n = static_cast<int>(x.size());
  x_ = x;
  y_mean_ = 0;
  for (double v : y) y_mean_ += v;
  y_mean_ /= std::max(1, n);
  double var = 0;
  for (double v : y) var += (v - y_mean_) * (v - y_mean_);
  y_scale_ = n > 1 ? std::sqrt(var / (n - 1)) : 1.0;
  if (y_scale_ <= 1e-12) y_scale_ = 1.0;
  y_.resize(n);
  for (int i = 0; i < n; ++i) y_(i) = (y[i] - y_mean_) / y_scale_;

  // Parameters: log w_d (dims), log s2, log noise. Adam on the log marginal likelihood.
  const int p = dims_ + 2;
  std::vector<double> theta(p), m(p, 0), v(p, 0);
  for (int d = 0; d < dims_; ++d) theta[d] = std::log(w_[d]);
  theta[dims_] = std::log(s2_);
  theta[dims_ + 1] = std::log(noise_);
  auto apply = [&] {
    for (int d = 0; d < dims_; ++d) w_[d] = std::exp(std::clamp(theta[d], -6.0, 3.0));
    s2_ = std::exp(std::clamp(theta[dims_], -3.0, 3.0));
    noise_ = std::exp(std::clamp(theta[dims_ + 1], -9.0, 1.0));
  };
  const double lr = 0.05, b1 = 0.9, b2 = 0.999;
  for (int it = 0; it < iterations && n >= 3; ++it) {
    Factor();
    // dL/dtheta = 0.5 tr((alpha alpha^T - K^-1) dK/dtheta)
    Eigen::MatrixXd a = alpha_ * alpha_.transpose() - llt_.solve(Eigen::MatrixXd::Identity(n, n));
    std::vector<double> grad(p, 0.0);
    for (int i = 0; i < n; ++i) {
      for (int j = 0; j < n; ++j) {
        double kij = Kernel(x_[i], x_[j]);
        double c = 0.5 * a(i, j) * kij;
        grad[dims_] += c;  // d/dlog s2
        for (int d = 0; d < dims_; ++d) {
          grad[d] -= c * w_[d] * Distance(x_[i], x_[j], d);
        }
      }
      grad[dims_ + 1] += 0.5 * a(i, i) * noise_;
    }
    for (int k = 0; k < p; ++k) {
      m[k] = b1 * m[k] + (1 - b1) * grad[k];
      v[k] = b2 * v[k] + (1 - b2) * grad[k] * grad[k];
      double mh = m[k] / (1 - std::pow(b1, it + 1)), vh = v[k] / (1 - std::pow(b2, it + 1));
      theta[k] += lr * mh / (std::sqrt(vh) + 1e-8);  // ascent
    }
    apply();
  }
  Factor();
}

void CategoricalGP::Predict(const Genes& x, double* mean, double* stddev) const {
  const int n = static_cast<int>(x_.size());
  Eigen::VectorXd k(n);
  for (int i = 0; i < n; ++i) k(i) = Kernel(x, x_[i]);
  double mu = k.dot(alpha_);
  Eigen::VectorXd v = llt_.matrixL().solve(k);
  double var = std::max(1e-12, s2_ - v.squaredNorm());
  *mean = y_mean_ + y_scale_ * mu;
  *stddev = y_scale_ * std::sqrt(var);
}

void CategoricalGP::PredictMany(const std::vector<Genes>& xs, std::vector<double>* mean,
                                std::vector<double>* stddev) const {
  const int n = static_cast<int>(x_.size()), m = static_cast<int>(xs.size());
  Eigen::MatrixXd k(n, m);
  for (int j = 0; j < m; ++j) {
    for (int i = 0; i < n; ++i) k(i, j) = Kernel(xs[j], x_[i]);
  }
  Eigen::VectorXd mu = k.transpose() * alpha_;
  llt_.matrixL().solveInPlace(k);
  Eigen::VectorXd reduce = k.colwise().squaredNorm().transpose();
  mean->resize(m);
  stddev->resize(m);
  for (int j = 0; j < m; ++j) {
    (*mean)[j] = y_mean_ + y_scale_ * mu(j);
    (*stddev)[j] = y_scale_ * std::sqrt(std::max(1e-12, s2_ - reduce(j)));
  }
}

double ExpectedImprovement(double mean, double stddev, double best, double xi) {
  double d = mean - best - xi;
  if (stddev <= 1e-12) return std::max(0.0, d);
  double z = d / stddev;
  double cdf = 0.5 * std::erfc(-z / std::sqrt(2.0));
  double pdf = std::exp(-0.5 * z * z) / std::sqrt(2 * M_PI);
  return d * cdf + stddev * pdf;
}

}  // namespace nasforge
