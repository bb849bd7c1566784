// Trial artifacts (a trained candidate's weights and self-check) as files under one directory:
// DIR/<job>/<trial>/<name>. Uploads arrive in chunks into a part file of their lease and become
// the artifact atomically (fsync, rename, fsync of the directory) when the last byte is in, so
// a reader sees a whole artifact or none, and a controller crash mid-upload leaves only a part
// file that the next upload of that lease overwrites.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"

namespace nasforge {

inline constexpr int64_t kArtifactChunkBytes = 1 << 20;

struct ArtifactWrite {
  std::string job_id;
  int64_t trial_id = 0;
  uint64_t lease_epoch = 0;
  std::string name;  // one of ArtifactNames()
  int64_t offset = 0;
  int64_t total_size = 0;
  std::string data;
};

struct ArtifactWriteResult {
  int64_t received = 0;
  bool complete = false;
};

class ArtifactStore {
 public:
  // Creates `dir` if needed. `max_bytes` bounds one artifact.
  static absl::StatusOr<std::unique_ptr<ArtifactStore>> Open(const std::string& dir,
                                                             int64_t max_bytes = int64_t{1} << 30);

  // INVALID_ARGUMENT naming the field for a bad name, id, offset or size; FAILED_PRECONDITION
  // for a chunk past the bytes received (a gap); INTERNAL for a file-system failure (full disk
  // included: the message says which file and why).
  absl::StatusOr<ArtifactWriteResult> Write(const ArtifactWrite& w);

  // Up to `max_bytes` from `offset`; NOT_FOUND when the artifact does not exist.
  absl::StatusOr<std::string> Read(const std::string& job_id, int64_t trial_id,
                                   const std::string& name, int64_t offset, int64_t max_bytes,
                                   int64_t* total_size);

  // Removes every artifact of the job (after the job itself was deleted). OK when it had none.
  absl::Status DeleteJob(const std::string& job_id);
  const std::string& dir() const { return dir_; }

 private:
  ArtifactStore(std::string dir, int64_t max_bytes) : dir_(std::move(dir)), max_bytes_(max_bytes) {}
  std::string dir_;
  int64_t max_bytes_;
  absl::Mutex mu_;  // one writer at a time per store (uploads are rare and short)
};

// The artifact names a worker may upload.
bool IsArtifactName(const std::string& name);

}  // namespace nasforge
