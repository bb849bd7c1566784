#include "controller/artifact_store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <system_error>

#include "absl/strings/str_cat.h"

namespace nasforge {
namespace {

namespace fs = std::filesystem;

bool SafeId(const std::string& s) {
  if (s.empty() || s.size() > 128) return false;
  for (char c : s) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_')) return false;
  }
  return true;
}

absl::Status Errno(const std::string& what, const std::string& path) {
  return absl::InternalError(
      absl::StrCat(what, " ", path, ": ", std::strerror(errno),
                   errno == ENOSPC ? " (the artifact directory is full)" : ""));
}

absl::Status FsyncPath(const std::string& path, int flags) {
  int fd = ::open(path.c_str(), flags | O_CLOEXEC);
  if (fd < 0) return Errno("open", path);
  int rc = ::fsync(fd);
  ::close(fd);
  return rc == 0 ? absl::OkStatus() : Errno("fsync", path);
}

}  // namespace

bool IsArtifactName(const std::string& name) { return name == "weights.pt" || name == "check.pt"; }

absl::StatusOr<std::unique_ptr<ArtifactStore>> ArtifactStore::Open(const std::string& dir,
                                                                   int64_t max_bytes) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) {
    return absl::FailedPreconditionError(
        absl::StrCat("artifact directory ", dir, ": ", ec.message()));
  }
  return std::unique_ptr<ArtifactStore>(new ArtifactStore(dir, max_bytes));
}

absl::StatusOr<ArtifactWriteResult> ArtifactStore::Write(const ArtifactWrite& w) {
  if (!IsArtifactName(w.name)) {
    return absl::InvalidArgumentError(
        absl::StrCat("name: must be weights.pt or check.pt, got '", w.name, "'"));
  }
  if (!SafeId(w.job_id)) return absl::InvalidArgumentError("lease.job_id: not a job id");
  if (w.trial_id < 0) return absl::InvalidArgumentError("lease.trial_id: must be >= 0");
  if (w.total_size < 0 || w.total_size > max_bytes_) {
    return absl::InvalidArgumentError(
        absl::StrCat("total_size: must be within [0, ", max_bytes_, "], got ", w.total_size));
  }
  if (static_cast<int64_t>(w.data.size()) > kArtifactChunkBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("data: a chunk is at most ", kArtifactChunkBytes, " bytes"));
  }
  if (w.offset < 0 || w.offset + static_cast<int64_t>(w.data.size()) > w.total_size) {
    return absl::InvalidArgumentError(absl::StrCat("offset: ", w.offset, " + ", w.data.size(),
                                                   " bytes is past total_size ", w.total_size));
  }
  absl::MutexLock l(&mu_);
  const std::string trial_dir = absl::StrCat(dir_, "/", w.job_id, "/", w.trial_id);
  std::error_code ec;
  fs::create_directories(trial_dir, ec);
  if (ec) return absl::InternalError(absl::StrCat("mkdir ", trial_dir, ": ", ec.message()));
  const std::string part = absl::StrCat(trial_dir, "/.", w.name, ".", w.lease_epoch, ".part");
  const std::string final_path = absl::StrCat(trial_dir, "/", w.name);
  struct stat st {};
  const int64_t have = ::stat(part.c_str(), &st) == 0 ? st.st_size : 0;
  if (w.offset > have) {
    return absl::FailedPreconditionError(absl::StrCat("offset: ", w.offset, " is past the ", have,
                                                      " bytes received; resend from ", have));
  }
  int fd = ::open(part.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return Errno("open", part);
  absl::Status s;
  if (::ftruncate(fd, w.offset) != 0) s = Errno("truncate", part);
  size_t done = 0;
  while (s.ok() && done < w.data.size()) {
    ssize_t n = ::pwrite(fd, w.data.data() + done, w.data.size() - done,
                         w.offset + static_cast<off_t>(done));
    if (n < 0) {
      if (errno == EINTR) continue;
      s = Errno("write", part);
    } else {
      done += static_cast<size_t>(n);
    }
  }
  const int64_t received = w.offset + static_cast<int64_t>(w.data.size());
  const bool complete = received == w.total_size;
  if (s.ok() && complete && ::fsync(fd) != 0) s = Errno("fsync", part);
  ::close(fd);
  if (!s.ok()) {
    ::unlink(part.c_str());
    return s;
  }
  if (complete) {
    if (::rename(part.c_str(), final_path.c_str()) != 0) return Errno("rename", final_path);
    if (absl::Status d = FsyncPath(trial_dir, O_RDONLY | O_DIRECTORY); !d.ok()) return d;
  }
  return ArtifactWriteResult{received, complete};
}

absl::StatusOr<std::string> ArtifactStore::Read(const std::string& job_id, int64_t trial_id,
                                                const std::string& name, int64_t offset,
                                                int64_t max_bytes, int64_t* total_size) {
  if (!IsArtifactName(name)) {
    return absl::InvalidArgumentError(
        absl::StrCat("name: must be weights.pt or check.pt, got '", name, "'"));
  }
  if (!SafeId(job_id)) return absl::InvalidArgumentError("job_id: not a job id");
  if (offset < 0) return absl::InvalidArgumentError("offset: must be >= 0");
  const std::string path = absl::StrCat(dir_, "/", job_id, "/", trial_id, "/", name);
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) {
      return absl::NotFoundError(absl::StrCat(
          "trial ", trial_id, " of job ", job_id, " has no ", name,
          ": its worker ran with --keep-weights=false, the trial did not succeed, or the "
          "controller keeps no artifacts (--artifact-dir)"));
    }
    return Errno("open", path);
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    ::close(fd);
    return Errno("stat", path);
  }
  *total_size = st.st_size;
  std::string out;
  if (offset < st.st_size) {
    out.resize(static_cast<size_t>(std::min<int64_t>(max_bytes, st.st_size - offset)));
    size_t done = 0;
    while (done < out.size()) {
      ssize_t n =
          ::pread(fd, out.data() + done, out.size() - done, offset + static_cast<off_t>(done));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        ::close(fd);
        return Errno("read", path);
      }
      done += static_cast<size_t>(n);
    }
  }
  ::close(fd);
  return out;
}

absl::Status ArtifactStore::DeleteJob(const std::string& job_id) {
  if (!SafeId(job_id)) return absl::InvalidArgumentError("job_id: not a job id");
  absl::MutexLock l(&mu_);
  std::error_code ec;
  fs::remove_all(absl::StrCat(dir_, "/", job_id), ec);
  if (ec) {
    return absl::InternalError(
        absl::StrCat("remove ", dir_, "/", job_id, ": ", ec.message(), " (remove it by hand)"));
  }
  return absl::OkStatus();
}

}  // namespace nasforge
