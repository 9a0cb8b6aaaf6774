// Whole-file reads and crash-safe writes.
#pragma once
#include <cstdio>
#include <string>
#include <string_view>

namespace convnets {

// Reads a whole regular file; throws std::runtime_error naming the path on failure, and at once (without
// blocking or allocating) when the path is a directory, a FIFO, a device or a socket.
std::string read_file(const std::string& path);

// Opens `path` for appending (created 0644 when missing) without following a symbolic link in its last
// component, and only if it is a regular file: a link planted in an output directory cannot redirect our
// writes. `mode` is "a" (append) or "w" (truncate). Throws naming the path.
std::FILE* open_output_file(const std::string& path, const char* mode = "a");

// Removes the temporaries write_file_atomic leaves when its process is killed mid-write (".NAME.tmp.PID")
// from `directory`, for PIDs that no longer run. Returns how many were removed.
int remove_stale_temporaries(const std::string& directory);

// A plain file name (no directory separator, not empty, ".", ".." or with a NUL): what configuration keys
// naming an output file inside model_dir must be. Throws std::invalid_argument naming `what`.
void check_plain_file_name(const std::string& name, const std::string& what);

// Writes `data` to `path` atomically: a temporary file in the same directory, fsync, rename, fsync of the
// directory. Readers see either the old file or the complete new one, never a torn write.
void write_file_atomic(const std::string& path, std::string_view data);

}  // namespace convnets
