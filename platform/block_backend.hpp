// Which vhost-user-blk back end serves a disk of the simulated machine:
// svmkit's own (svmkit-vhost-blk, which can also misbehave on purpose for
// tests) or QEMU's qemu-storage-daemon, unmodified. The hypervisor process
// starts one per disk (platform/vhost_user/daemon_process.hpp), each on a
// unix socket in a private directory.
#pragma once

#include "base/error.hpp"
#include "platform/vhost_user/daemon_process.hpp"

#include <string>
#include <string_view>

namespace svmkit::platform {

enum class BlockBackendKind { svmkit, qemu };
std::string_view block_backend_name(BlockBackendKind k);
// The program that serves the disk: "svmkit-vhost-blk" or "qemu-storage-daemon".
std::string_view block_backend_program(BlockBackendKind k);
Result<BlockBackendKind> parse_block_backend(std::string_view name);

struct BlockBackendSpec {
    std::string disk;
    BlockBackendKind kind = BlockBackendKind::svmkit;
    std::string hostile; // svmkit-vhost-blk --hostile MODE ("" = behave)
    bool read_only = false;
};

// Where svmkit-vhost-blk is: $SVMKIT_VHOST_BLK, else among the helper
// programs (platform/helper_program.hpp); an error when it is missing. QEMU's
// daemon is looked up on PATH.
Result<std::string> default_vhost_blk_path();

// Starts the back end for `spec` listening on `socket_path`, its output in
// `log_path`. `vhost_blk`: svmkit-vhost-blk's path; it writes its counters
// to `stats_path` when stopped (qemu-storage-daemon's vhost-user-blk export
// keeps none: QEMU's I/O accounting belongs to emulated devices).
Result<vhost_user::DaemonProcess> start_block_backend(const BlockBackendSpec& spec,
                                                      const std::string& vhost_blk,
                                                      const std::string& socket_path,
                                                      const std::string& log_path,
                                                      const std::string& stats_path);

} // namespace svmkit::platform
