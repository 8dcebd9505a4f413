#include "platform/block_backend.hpp"

#include "platform/helper_program.hpp"

namespace svmkit::platform {

std::string_view block_backend_name(BlockBackendKind k) {
    return k == BlockBackendKind::svmkit ? "svmkit" : "qemu";
}

std::string_view block_backend_program(BlockBackendKind k) {
    return k == BlockBackendKind::svmkit ? "svmkit-vhost-blk" : "qemu-storage-daemon";
}

Result<BlockBackendKind> parse_block_backend(std::string_view name) {
    if (name == "svmkit")
        return BlockBackendKind::svmkit;
    if (name == "qemu")
        return BlockBackendKind::qemu;
    return fail(ExitCode::usage, "--backend {}: expected svmkit or qemu", name);
}

Result<std::string> default_vhost_blk_path() {
    return helper_program("SVMKIT_VHOST_BLK", "svmkit-vhost-blk");
}

Result<vhost_user::DaemonProcess> start_block_backend(const BlockBackendSpec& spec,
                                                      const std::string& vhost_blk,
                                                      const std::string& socket_path,
                                                      const std::string& log_path,
                                                      const std::string& stats_path) {
    if (spec.kind == BlockBackendKind::qemu) {
        if (!spec.hostile.empty())
            return fail(ExitCode::usage, "--hostile needs the svmkit back end");
        return vhost_user::DaemonProcess::spawn(
            vhost_user::qemu_storage_daemon_command(socket_path, spec.disk, !spec.read_only),
            log_path);
    }
    return vhost_user::DaemonProcess::spawn(
        vhost_user::vhost_blk_command(vhost_blk, socket_path, spec.disk, spec.read_only,
                                      spec.hostile.empty() ? "none" : spec.hostile, stats_path),
        log_path);
}

} // namespace svmkit::platform
