// Connecting to a unix stream socket by path: QEMU's gdbstub and console
// (platform/gdbstub, platform/qemu) both listen on one.
#pragma once

#include "base/error.hpp"
#include "base/file.hpp"

#include <string>
#include <string_view>

namespace svmkit {

// A connected, close-on-exec socket. `socket_name` and `peer` word the
// messages ("{path}: {socket_name}'s path is too long", "{path}: cannot
// connect to {peer}: ..."); a refused or missing socket is `refused_code`.
Result<UniqueFd> connect_unix(const std::string& path, std::string_view socket_name,
                              std::string_view peer, ExitCode refused_code);

} // namespace svmkit
