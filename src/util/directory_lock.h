// An advisory lock on a directory that one writer at a time may own (a training's model_dir): flock on
// DIR/.lock, which holds the owner's PID. The kernel releases it when the process ends, however it ends, so
// a crash or SIGKILL never leaves a stale lock behind.
#pragma once
#include <string>

namespace convnets {

class DirectoryLock {
 public:
  // Takes the lock or throws std::runtime_error at once (no waiting), naming the directory and the PID
  // that holds it. `what` says what the lock is for, in the message ("training").
  DirectoryLock(const std::string& directory, const std::string& what);
  ~DirectoryLock();
  DirectoryLock(const DirectoryLock&) = delete;
  DirectoryLock& operator=(const DirectoryLock&) = delete;

 private:
  int fd_ = -1;
};

}  // namespace convnets
