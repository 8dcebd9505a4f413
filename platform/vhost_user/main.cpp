// svmkit-vhost-blk: a vhost-user-blk back end over a disk file.
//
//   svmkit-vhost-blk --socket PATH --disk FILE [--read-only] [--hostile MODE] [--stats FILE]
//
// Serves one front end at a time until SIGTERM/SIGINT. Exit codes follow
// svmkit's (base/error.hpp): 2 bad options, 4 the disk or socket failed.
#include "platform/vhost_user/hostile.hpp"
#include "platform/vhost_user/server.hpp"

#include <CLI/CLI.hpp>
#include <csignal>
#include <cstdio>

int main(int argc, char** argv) {
    using namespace svmkit::vhost_user;
    // Before any thread exists: SIGTERM/SIGINT arrive through the server's
    // signalfd, SIGPIPE never kills us (a front end may vanish mid-reply).
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigprocmask(SIG_BLOCK, &set, nullptr);
    std::signal(SIGPIPE, SIG_IGN);

    CLI::App app{"svmkit-vhost-blk: vhost-user-blk back end over a disk file"};
    ServerOptions options;
    std::string hostile = "none";
    app.add_option("--socket", options.socket_path, "unix socket to listen on")->required();
    app.add_option("--disk", options.disk_path, "disk image (raw)")->required();
    app.add_flag("--read-only", options.read_only, "refuse writes (VIRTIO_BLK_F_RO)");
    app.add_option("--stats", options.stats_path,
                   "write what was served (JSON counters) to this file when stopped");
    app.add_option("--hostile", hostile,
                   "misbehave on purpose, for tests: MODE[@N] (after N honest requests): " +
                       hostile_mode_list());
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        return app.exit(e);
    }
    auto spec = parse_hostile_spec(hostile);
    if (!spec) {
        std::fprintf(stderr, "svmkit-vhost-blk: %s\n", spec.error().message.c_str());
        return static_cast<int>(svmkit::ExitCode::usage);
    }
    options.backend.hostile = spec->mode;
    options.backend.hostile_after = spec->after;
    auto r = run_server(options);
    if (!r) {
        std::fprintf(stderr, "svmkit-vhost-blk: %s\n", r.error().message.c_str());
        return static_cast<int>(r.error().code);
    }
    return 0;
}
