// nasforge-worker: flags -> WorkerOptions, wiring, signal handling. Logic is in worker_loop.cc.
#include <unistd.h>

#include <boost/asio/signal_set.hpp>
#include <cctype>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>
#include <utility>  // before Boost.Asio (g++ 12, C++20)

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "client/channel.h"
#include "core/daemon_flags.h"
#include "core/log.h"
#include "metrics/build_info.h"
#include "metrics/metrics_server.h"
#include "worker/process_tuning.h"
#include "worker/tabular_trainer.h"
#include "worker/trainer.h"
#include "worker/worker_loop.h"

ABSL_FLAG(std::string, controller, "127.0.0.1:50051", "controller HOST:PORT");
ABSL_FLAG(std::string, token_file, "",
          "file holding this worker's bearer token (a `worker` token); default $NASFORGE_TOKEN");
ABSL_FLAG(std::string, tls_ca, "",
          "CA (PEM) of the controller's certificate: use TLS; default $NASFORGE_TLS_CA");
ABSL_FLAG(std::string, tls_cert, "", "this worker's certificate (PEM), for mutual TLS");
ABSL_FLAG(std::string, tls_key, "", "this worker's private key (PEM), for mutual TLS");
ABSL_FLAG(std::string, metrics_tls_cert, "", "serve /metrics over HTTPS: certificate chain (PEM)");
ABSL_FLAG(std::string, metrics_tls_key, "", "serve /metrics over HTTPS: private key (PEM)");
ABSL_FLAG(bool, metrics_insecure, false,
          "serve /metrics as plain HTTP on a non-loopback --metrics-listen");
ABSL_FLAG(bool, insecure, false,
          "allow a plain-text connection to a non-loopback controller (tokens readable on the "
          "network)");
ABSL_FLAG(std::string, data_dir, "/usr/share/datasets/fashion-mnist",
          "directory with the IDX files (train-/t10k-images-idx3-ubyte[.gz], ...)");
ABSL_FLAG(std::string, data_root, "/var/lib/nasforge/data",
          "directory holding the data sets of jobs with dataset idx, cifar or npy (their "
          "training.data_path is relative to it)");
ABSL_FLAG(int, threads, 1, "LibTorch intra-op threads for training and latency");
ABSL_FLAG(std::string, hardware_profile, "",
          "profile name latencies are keyed by; "
          "default cpu-<threads>t, or the GPU's name (h200) with --device cuda");
ABSL_FLAG(std::string, device, "cpu",
          "train and measure on: cpu, cuda or cuda:N (needs a worker built with CUDA LibTorch)");
ABSL_FLAG(std::string, autocast, "", "bf16: mixed-precision training on the GPU");
ABSL_FLAG(bool, channels_last, false, "NHWC weights and batches (faster convs on tensor cores)");
ABSL_FLAG(bool, keep_weights, true,
          "upload each trained candidate's weights to the controller (for `nasforge export`)");
ABSL_FLAG(bool, pin_threads, false,
          "pin the worker to --threads CPUs of its allowed set (stable CPU latency figures)");
ABSL_FLAG(bool, tune_malloc, true,
          "keep freed memory in the heap between training steps (glibc mmap/trim thresholds; "
          "GLIBC_TUNABLES wins)");
ABSL_FLAG(bool, measure_latency, true,
          "take latency measurement leases for this worker's hardware profile (jobs' "
          "hardware_targets)");
ABSL_FLAG(std::string, worker_id, "", "stable worker id; default: assigned by the controller");
ABSL_FLAG(std::string, metrics_listen, "127.0.0.1:0", "/metrics HOST:PORT; empty: off");
ABSL_FLAG(int, max_trials, 0, "exit after this many trials (0: run until SIGTERM)");
ABSL_FLAG(double, exit_when_idle, 0, "exit after this many seconds without work (0: never)");
ABSL_FLAG(std::string, backend, "torch",
          "torch (train with LibTorch) or tabular (answer NAS-Bench-201 cells from --table)");
ABSL_FLAG(std::string, table, "",
          "tabular: benchmark CSV (gzip read as is), keyed by the NAS-Bench-201 arch string or, "
          "with --key-column= , by its parameter columns");
ABSL_FLAG(std::string, key_column, "arch_str",
          "tabular: the column holding the arch string; empty: rows keyed by every column that "
          "is not the fitness, seeds or a report column (a table of parameters)");
ABSL_FLAG(std::string, fitness_column, "", "tabular: column reported as the trial's accuracy");
ABSL_FLAG(std::string, report_columns, "", "tabular: comma-separated columns also reported");
ABSL_FLAG(double, tabular_trial_seconds, 0,
          "tabular: wait this long per trial, as if training (demos, live-system tests)");
ABSL_FLAG(std::string, seeds_column, "",
          "tabular: ';'-separated per-seed fitness; each trial reports one seed's value");

namespace {

// "NVIDIA H200" -> "h200": a short profile name for a GPU.
std::string GpuProfileName(std::string name) {
  for (const char* vendor : {"NVIDIA ", "AMD "}) {
    if (name.rfind(vendor, 0) == 0) name = name.substr(std::strlen(vendor));
  }
  std::string out;
  for (char c : name) {
    if (std::isalnum(static_cast<unsigned char>(c))) {
      out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    } else if (!out.empty() && out.back() != '-') {
      out += '-';
    }
  }
  while (!out.empty() && out.back() == '-') out.pop_back();
  return out.empty() ? "gpu" : out;
}

std::string CpuModel() {
  std::ifstream f("/proc/cpuinfo");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("model name", 0) == 0) {
      auto p = line.find(':');
      return p == std::string::npos ? line : line.substr(p + 2);
    }
  }
  return "unknown";
}

}  // namespace

int main(int argc, char** argv) {
  // OpenBLAS reads its thread count when it is loaded, before main: re-exec once with it set so
  // BLAS threads do not fight LibTorch's OpenMP pool.
  if (getenv("OPENBLAS_NUM_THREADS") == nullptr) {
    setenv("OPENBLAS_NUM_THREADS", "1", 1);
    execv("/proc/self/exe", argv);
  }
  nasforge::ParseDaemonFlags(
      argc, argv, "nasforge-worker",
      "nasforge-worker: trains and measures candidates leased from a controller (LibTorch).\n"
      "Usage: nasforge-worker --controller HOST:PORT [--data-dir DIR] [--threads N] "
      "[--hardware-profile NAME] [flags]");
  using nasforge::Log;
  using nasforge::LogLevel;

  int threads = std::max(1, absl::GetFlag(FLAGS_threads));
  if (absl::GetFlag(FLAGS_tune_malloc)) nasforge::KeepHeapAcrossSteps();
  if (absl::GetFlag(FLAGS_pin_threads)) {
    auto pinned = nasforge::PinToCpus(threads);
    if (!pinned.ok()) {
      Log(LogLevel::kError, "bad_flags", {{"error", pinned.status().message()}});
      return 2;
    }
    Log(LogLevel::kInfo, "pinned", {{"cpus", *pinned}});
  }
  const std::string device = absl::GetFlag(FLAGS_device);
  const std::string backend = absl::GetFlag(FLAGS_backend);
  const std::string accelerator =
      backend == "torch" ? nasforge::AcceleratorName(device) : std::string("none");
  nasforge::WorkerOptions o;
  o.worker_id = absl::GetFlag(FLAGS_worker_id);
  std::string profile = absl::GetFlag(FLAGS_hardware_profile);
  if (profile.empty()) {
    profile =
        accelerator == "none" ? absl::StrCat("cpu-", threads, "t") : GpuProfileName(accelerator);
  }
  o.hardware.set_name(profile);
  o.hardware.set_cpu_model(CpuModel());
  o.hardware.set_accelerator(accelerator.empty() ? "none" : accelerator);
  o.hardware.set_threads(threads);
  o.hardware.set_memory_bytes(static_cast<int64_t>(sysconf(_SC_PHYS_PAGES)) *
                              sysconf(_SC_PAGE_SIZE));
  o.max_trials = absl::GetFlag(FLAGS_max_trials);
  o.measure_latency = absl::GetFlag(FLAGS_measure_latency);
  o.exit_when_idle = absl::Seconds(absl::GetFlag(FLAGS_exit_when_idle));

  auto registry = std::make_shared<prometheus::Registry>();
  nasforge::WorkerMetrics metrics(*registry);
  nasforge::RegisterBuildInfo(*registry, "worker");
  std::unique_ptr<nasforge::MetricsServer> metrics_server;
  if (std::string ml = absl::GetFlag(FLAGS_metrics_listen); !ml.empty()) {
    auto ms = nasforge::StartMetricsServer({.listen = ml,
                                            .tls_cert = absl::GetFlag(FLAGS_metrics_tls_cert),
                                            .tls_key = absl::GetFlag(FLAGS_metrics_tls_key),
                                            .insecure = absl::GetFlag(FLAGS_metrics_insecure)},
                                           registry);
    if (!ms.ok()) {
      Log(LogLevel::kError, "metrics_listen_failed",
          {{"error", ms.status().message()}, {"action", "pick another --metrics-listen"}});
      return 1;
    }
    metrics_server = std::move(*ms);
    Log(LogLevel::kInfo, "metrics_listening", {{"port", metrics_server->port()}});
  }

  std::unique_ptr<nasforge::Trainer> trainer;
  o.backend = backend;
  if (backend == "tabular") {
    nasforge::TabularOptions t;
    t.table = absl::GetFlag(FLAGS_table);
    t.key_column = absl::GetFlag(FLAGS_key_column);
    t.fitness_column = absl::GetFlag(FLAGS_fitness_column);
    t.seeds_column = absl::GetFlag(FLAGS_seeds_column);
    t.trial_seconds = absl::GetFlag(FLAGS_tabular_trial_seconds);
    if (!(t.trial_seconds >= 0 && t.trial_seconds <= 86400)) {
      Log(LogLevel::kError, "bad_flags",
          {{"error", "--tabular-trial-seconds must be within [0, 86400]"}});
      return 2;
    }
    for (absl::string_view c :
         absl::StrSplit(absl::GetFlag(FLAGS_report_columns), ',', absl::SkipEmpty())) {
      t.report_columns.emplace_back(c);
    }
    if (t.table.empty()) {
      Log(LogLevel::kError, "bad_flags",
          {{"error", "--backend tabular needs --table"}, {"action", "pass --table CSV"}});
      return 2;
    }
    auto tt = nasforge::NewTabularTrainer(t);
    if (!tt.ok()) {
      Log(LogLevel::kError, "table_load_failed",
          {{"table", t.table},
           {"error", tt.status().message()},
           {"action", "check the path and the column flags"}});
      return 2;
    }
    trainer = std::move(*tt);
    Log(LogLevel::kInfo, "table_loaded", {{"table", t.table}, {"fitness", t.fitness_column}});
  } else if (backend == "torch") {
    nasforge::TorchTrainerOptions to;
    to.data_dir = absl::GetFlag(FLAGS_data_dir);
    to.data_root = absl::GetFlag(FLAGS_data_root);
    to.threads = threads;
    to.device = device;
    to.autocast = absl::GetFlag(FLAGS_autocast);
    to.channels_last = absl::GetFlag(FLAGS_channels_last);
    to.keep_weights = absl::GetFlag(FLAGS_keep_weights);
    auto made = nasforge::NewTorchTrainer(to);
    if (!made.ok()) {
      Log(LogLevel::kError, "bad_flags", {{"error", made.status().message()}, {"device", device}});
      return 2;
    }
    trainer = std::move(*made);
  } else {
    Log(LogLevel::kError, "bad_flags",
        {{"error", "--backend must be torch or tabular"}, {"backend", backend}});
    return 2;
  }
  auto token = nasforge::LoadToken(absl::GetFlag(FLAGS_token_file));
  if (!token.ok()) {
    Log(LogLevel::kError, "bad_flags", {{"error", token.status().message()}});
    return 2;
  }
  nasforge::ChannelOptions co;
  co.target = absl::GetFlag(FLAGS_controller);
  co.token = *token;
  co.tls_ca = absl::GetFlag(FLAGS_tls_ca);
  if (co.tls_ca.empty() && std::getenv("NASFORGE_TLS_CA"))
    co.tls_ca = std::getenv("NASFORGE_TLS_CA");
  co.tls_cert = absl::GetFlag(FLAGS_tls_cert);
  co.tls_key = absl::GetFlag(FLAGS_tls_key);
  co.insecure = absl::GetFlag(FLAGS_insecure);
  auto made = nasforge::NewGrpcControllerClient(co);
  if (!made.ok()) {
    Log(LogLevel::kError, "bad_flags", {{"error", made.status().message()}});
    return 2;
  }
  auto client = std::move(*made);
  nasforge::WorkerLoop loop(client.get(), trainer.get(), o, &metrics);

  boost::asio::signal_set signals(loop.io(), SIGINT, SIGTERM);
  std::function<void(const boost::system::error_code&, int)> on_signal =
      [&](const boost::system::error_code& ec, int sig) {
        if (ec) return;
        static int count = 0;
        if (++count > 1) {
          Log(LogLevel::kWarn, "signal", {{"signal", sig}, {"action", "exit now"}});
          std::_Exit(130);
        }
        Log(LogLevel::kInfo, "signal",
            {{"signal", sig}, {"action", "hand back the current trial and exit"}});
        loop.Stop();
        signals.async_wait(on_signal);
      };
  signals.async_wait(on_signal);

  Log(LogLevel::kInfo, "worker_starting",
      {{"controller", absl::GetFlag(FLAGS_controller)},
       {"profile", o.hardware.name()},
       {"threads", threads},
       {"accelerator", o.hardware.accelerator()},
       {"backend", backend}});
  absl::Status st = loop.Run();
  if (!st.ok()) {
    Log(LogLevel::kError, "worker_failed", {{"error", st.message()}});
    return 1;
  }
  return 0;
}
