// A tabular benchmark as an oracle: rows keyed by an architecture key (NAS-Bench-201's arch
// string) and/or parameter columns (one per hyperparameter or choice of the job's space, holding
// its value: HPOlib/HPOBench tables), a fitness column (optionally per-seed values to sample one
// noisy run) and columns to report. Column names come from the caller: nothing about one data
// set is hard-coded. Gzip-compressed CSV is read as is.
#pragma once

#include <cstdint>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

#include "absl/status/statusor.h"
#include "core/table.h"
#include "nasforge/v1/nasforge.pb.h"

namespace nasforge {

struct TabularOptions {
  std::string table;                    // CSV path
  std::string key_column = "arch_str";  // the NAS-Bench-201 arch string; "": none
  // Columns naming the job's parameters (core/parameters.h): a candidate's row is the one whose
  // cells equal its values (numbers compared as numbers). Empty with no key column: every column
  // that is not the fitness, seeds or a report column.
  std::vector<std::string> param_columns;
  std::string fitness_column;               // e.g. c10_val_200ep
  std::vector<std::string> report_columns;  // e.g. c10_test_200ep
  std::string seeds_column;                 // optional, ';'-separated per-seed fitness
  // Wait this long per trial before answering, as if training (abortable): for demos, and for
  // tests that watch a live system (metrics, dashboards, network faults) mid-trial.
  double trial_seconds = 0;
};

class TabularOracle {
 public:
  // Errors name the flag and list the table's columns when a column is missing.
  static absl::StatusOr<TabularOracle> Load(const TabularOptions& o);

  size_t rows() const { return fitness_.size(); }
  // Row of an architecture (NB201: its cell string); NOT_FOUND naming the key otherwise.
  absl::StatusOr<size_t> Find(const v1::Architecture& arch) const;
  absl::StatusOr<size_t> FindKey(const std::string& key) const;
  // One run's fitness: a random seed's value when a seeds column was given, else the mean.
  double SampleFitness(size_t row, std::mt19937_64& rng) const;
  double MeanFitness(size_t row) const { return fitness_[row]; }
  // Report column i (in TabularOptions::report_columns order).
  double Report(size_t row, size_t i) const { return reports_[i][row]; }
  const std::string& Key(size_t row) const { return keys_[row]; }
  // The parameter columns rows are keyed by (empty: the key column alone).
  const std::vector<std::string>& param_columns() const { return param_columns_; }
  // Row `row`'s cell in parameter column i, as written in the table.
  const std::string& ParamCell(size_t row, size_t i) const { return param_cells_[i][row]; }
  const TabularOptions& options() const { return o_; }

 private:
  TabularOptions o_;
  std::vector<std::string> param_columns_;
  std::vector<std::vector<std::string>> param_cells_;
  std::vector<std::string> keys_;
  std::unordered_map<std::string, size_t> index_;
  std::vector<double> fitness_;
  std::vector<std::vector<double>> seeds_;
  std::vector<std::vector<double>> reports_;
};

}  // namespace nasforge
