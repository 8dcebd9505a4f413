#include "platform/vhost_user/server.hpp"

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <fcntl.h>
#include <nlohmann/json.hpp>
#include <optional>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <unistd.h>

namespace svmkit::vhost_user {

namespace {

constexpr std::uint64_t kTagListen = 1;
constexpr std::uint64_t kTagSignal = 2;
constexpr std::uint64_t kTagClient = 3;
constexpr std::uint64_t kTagTimer = 4;
constexpr std::uint64_t kTagKick = 0x100; // + ring index
constexpr long kStormPeriodNs = 10'000'000;

struct ListeningSocket {
    UniqueFd fd;
    ino_t inode = 0;
};

Result<ListeningSocket> listen_on(const std::string& path) {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (path.empty() || path.size() >= sizeof addr.sun_path)
        return fail(ExitCode::usage, "{}: socket path must be 1 to {} bytes", path,
                    sizeof addr.sun_path - 1);
    std::memcpy(addr.sun_path, path.data(), path.size());
    struct stat st {};
    if (::lstat(path.c_str(), &st) == 0) {
        if (!S_ISSOCK(st.st_mode))
            return fail(ExitCode::usage, "{}: exists and is not a socket; not replacing it", path);
        ::unlink(path.c_str()); // a stale socket of an earlier run
    }
    ListeningSocket s;
    s.fd = UniqueFd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!s.fd.valid())
        return fail(ExitCode::io, "{}: socket: {}", path, std::strerror(errno));
    if (::bind(s.fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0)
        return fail(ExitCode::io, "{}: bind: {}", path, std::strerror(errno));
    if (::listen(s.fd.get(), 1) != 0)
        return fail(ExitCode::io, "{}: listen: {}", path, std::strerror(errno));
    if (::lstat(path.c_str(), &st) == 0)
        s.inode = st.st_ino;
    return s;
}

class Epoll {
  public:
    static Result<Epoll> create() {
        Epoll e;
        e.fd_ = UniqueFd(::epoll_create1(EPOLL_CLOEXEC));
        if (!e.fd_.valid())
            return fail(ExitCode::io, "epoll_create1: {}", std::strerror(errno));
        return e;
    }
    Result<void> add(int fd, std::uint64_t tag) {
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.u64 = tag;
        if (::epoll_ctl(fd_.get(), EPOLL_CTL_ADD, fd, &ev) != 0)
            return fail(ExitCode::io, "{}", std::strerror(errno));
        return {};
    }
    void remove(int fd) { ::epoll_ctl(fd_.get(), EPOLL_CTL_DEL, fd, nullptr); }
    int wait(epoll_event* events, int max) { return ::epoll_wait(fd_.get(), events, max, -1); }

  private:
    UniqueFd fd_;
};

// The loop's state; one object so the helpers below can share it.
class Server {
  public:
    Server(const ServerOptions& options, const BlockDisk& disk, Epoll epoll, UniqueFd listen_fd,
           UniqueFd timer)
        : options_(options), disk_(disk), epoll_(std::move(epoll)),
          listen_fd_(std::move(listen_fd)), timer_(std::move(timer)) {}

    Result<void> run(int signal_fd) {
        SVM_CHECK(epoll_.add(signal_fd, kTagSignal));
        SVM_CHECK(epoll_.add(listen_fd_.get(), kTagListen));
        SVM_CHECK(epoll_.add(timer_.get(), kTagTimer));
        epoll_event events[16];
        for (;;) {
            int n = epoll_.wait(events, 16);
            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0)
                return fail(ExitCode::io, "epoll_wait: {}", std::strerror(errno));
            for (int i = 0; i < n; ++i) {
                const std::uint64_t tag = events[i].data.u64;
                if (tag == kTagSignal) {
                    log("stopping on signal");
                    disconnect();
                    return {};
                }
                if (tag == kTagListen)
                    accept_client();
                else if (tag == kTagClient)
                    serve_message();
                else if (tag == kTagTimer)
                    storm_tick();
                else if (tag >= kTagKick)
                    kick(static_cast<std::size_t>(tag - kTagKick));
                // Earlier events of this batch may have disconnected the
                // client and closed fds that later events refer to.
                if (!client_)
                    break;
            }
        }
    }

  private:
    void log(const std::string& message) const {
        if (options_.log != nullptr)
            std::fprintf(options_.log, "svmkit-vhost-blk: %s\n", message.c_str());
    }

    void accept_client() {
        if (client_)
            return;
        UniqueFd fd(::accept4(listen_fd_.get(), nullptr, nullptr, SOCK_CLOEXEC));
        if (!fd.valid())
            return; // the connecting peer gave up; keep listening
        if (!epoll_.add(fd.get(), kTagClient))
            return;
        epoll_.remove(listen_fd_.get());
        client_.emplace(std::move(fd), options_.socket_path);
        session_.emplace(disk_, options_.backend, options_.log);
        log("front end connected");
    }

    void disconnect() {
        unwatch_kicks();
        arm_storm(false);
        if (client_) {
            epoll_.remove(client_->fd());
            log("front end disconnected");
        }
        session_.reset(); // unmaps the memory table, closes ring fds
        client_.reset();
        (void)epoll_.add(listen_fd_.get(), kTagListen);
    }

    void serve_message() {
        auto m = client_->receive(false, kMessageTimeout);
        if (!m) {
            log("dropping front end: " + m.error().message);
            disconnect();
            return;
        }
        if (!*m) {
            disconnect();
            return;
        }
        // The session may close kick fds while handling the message: stop
        // watching them first (epoll would keep reporting a closed fd whose
        // eventfd the front end still holds).
        unwatch_kicks();
        Response r = session_->handle(std::move(**m));
        if (r.reply) {
            if (auto s = client_->send(r.reply->header, r.reply->payload); !s) {
                log("dropping front end: " + s.error().message);
                disconnect();
                return;
            }
        }
        if (r.close) {
            log("closing the connection: the front end cannot be told of the refusal");
            disconnect();
            return;
        }
        watch_kicks();
        arm_storm(session_->storm_active());
    }

    void kick(std::size_t ring) {
        auto it = std::find_if(watched_.begin(), watched_.end(),
                               [&](const auto& w) { return w.second == ring; });
        if (it == watched_.end())
            return;
        std::uint64_t count = 0;
        ssize_t n = ::read(it->first, &count, sizeof count);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            return;
        if (n <= 0) {
            session_->kick_failed(ring, n == 0 ? "end of file" : std::strerror(errno));
            unwatch_kicks();
            watch_kicks();
            return;
        }
        session_->process_queue(ring);
        // A storm delayed by @N starts once its requests have completed.
        arm_storm(session_->storm_active());
    }

    void storm_tick() {
        std::uint64_t expirations = 0;
        (void)!::read(timer_.get(), &expirations, sizeof expirations);
        if (session_)
            session_->storm_tick();
    }

    void unwatch_kicks() {
        for (const auto& [fd, ring] : watched_)
            epoll_.remove(fd);
        watched_.clear();
    }

    // Watches the kick fd of every started, unbroken ring.
    void watch_kicks() {
        for (std::size_t i = 0; i < session_->queue_count(); ++i) {
            const DeviceQueue& q = session_->queue(i);
            if (!q.started() || q.broken() || q.kick_fd() < 0)
                continue;
            // Kick fds are QEMU-style non-blocking eventfds; make sure a read
            // never blocks the loop even if the front end sent something else.
            int flags = ::fcntl(q.kick_fd(), F_GETFL);
            if (flags >= 0)
                ::fcntl(q.kick_fd(), F_SETFL, flags | O_NONBLOCK);
            if (auto r = epoll_.add(q.kick_fd(), kTagKick + i); !r) {
                session_->kick_failed(i, "cannot be watched: " + r.error().message);
                continue;
            }
            watched_.emplace_back(q.kick_fd(), i);
        }
    }

    // Starts or stops the interrupt storm's timer; a timer already in the
    // wanted state is left alone (re-arming would push its next tick back).
    void arm_storm(bool on) {
        if (on == storm_armed_)
            return;
        storm_armed_ = on;
        itimerspec t{};
        if (on) {
            t.it_value.tv_nsec = kStormPeriodNs;
            t.it_interval.tv_nsec = kStormPeriodNs;
        }
        ::timerfd_settime(timer_.get(), 0, &t, nullptr);
    }

    const ServerOptions& options_;
    const BlockDisk& disk_;
    Epoll epoll_;
    UniqueFd listen_fd_;
    UniqueFd timer_;
    std::optional<Channel> client_;
    std::optional<Session> session_;
    std::vector<std::pair<int, std::size_t>> watched_; // kick fd, ring
    bool storm_armed_ = false;
};

// {"requests":..,"reads":..,...}: what this back end served, for whoever
// started it (the hypervisor process reads it when it stops the back end).
Result<void> write_stats(const std::string& path, const BlkCounters& c) {
    const nlohmann::ordered_json j = {
        {"requests", c.requests},     {"reads", c.reads},
        {"writes", c.writes},         {"flushes", c.flushes},
        {"other", c.other},           {"errors", c.errors},
        {"bytes_read", c.bytes_read}, {"bytes_written", c.bytes_written}};
    const std::string text = j.dump() + "\n";
    UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
    if (!fd.valid())
        return fail(ExitCode::io, "{}: cannot write the counters: {}", path, std::strerror(errno));
    return write_all_fd(fd.get(), as_bytes(text), path);
}

} // namespace

Result<void> run_server(const ServerOptions& options) {
    SVM_TRY(disk, BlockDisk::open(options.disk_path, options.read_only));
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    UniqueFd signal_fd(::signalfd(-1, &set, SFD_CLOEXEC));
    if (!signal_fd.valid())
        return fail(ExitCode::io, "signalfd: {}", std::strerror(errno));
    UniqueFd timer(::timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK));
    if (!timer.valid())
        return fail(ExitCode::io, "timerfd_create: {}", std::strerror(errno));
    SVM_TRY(epoll, Epoll::create());
    SVM_TRY(listening, listen_on(options.socket_path));
    if (options.log != nullptr) {
        std::fprintf(options.log,
                     "svmkit-vhost-blk: listening on %s (disk %s, %llu sectors, %s, hostile %s)\n",
                     options.socket_path.c_str(), disk.path().c_str(),
                     static_cast<unsigned long long>(disk.sectors()),
                     disk.read_only() ? "read-only" : "writable",
                     std::string(hostile_mode_name(options.backend.hostile)).c_str());
        std::fflush(options.log);
    }
    const ino_t inode = listening.inode;
    Server server(options, disk, std::move(epoll), std::move(listening.fd), std::move(timer));
    auto result = server.run(signal_fd.get());
    struct stat st {};
    if (::lstat(options.socket_path.c_str(), &st) == 0 && st.st_ino == inode)
        ::unlink(options.socket_path.c_str());
    if (!options.stats_path.empty())
        SVM_CHECK(write_stats(options.stats_path, disk.counters()));
    return result;
}

} // namespace svmkit::vhost_user
