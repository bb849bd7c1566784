// Process-wide settings a training worker makes once, at start, before LibTorch spawns threads.
#pragma once

#include <string>

#include "absl/status/statusor.h"

namespace nasforge {

// Keeps freed memory in the heap instead of returning it to the kernel: glibc otherwise trims
// and regrows the heap several times per training step and maps every tensor of 128 KiB or more
// fresh (page faults in every step: 12-13% of an epoch in the kernel, measured). Raises the mmap
// threshold to its maximum (32 MiB) and the trim threshold to 1 GiB. Environment settings
// (GLIBC_TUNABLES=glibc.malloc.*, MALLOC_*_) win: then nothing is changed. Returns whether it
// changed anything.
bool KeepHeapAcrossSteps();

// Pins this process to `n` CPUs of the ones it may use (the first n of its affinity mask),
// before threads are started, so they inherit it: LibTorch's pool of n threads then runs on n
// fixed cores, and latency measurements do not move between cores. Returns the CPU list pinned
// to ("0-3"); FAILED_PRECONDITION when fewer than n CPUs are allowed.
absl::StatusOr<std::string> PinToCpus(int n);

}  // namespace nasforge
