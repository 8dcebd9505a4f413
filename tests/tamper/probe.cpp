#include "tamper/probe.hpp"

#include "format/verify.hpp"
#include "platform/machine.hpp"
#include "wrapper/commands.hpp"

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

namespace svmkit::tamper {

namespace {

Result<format::VerifyPolicy> load_policy(const Policy& p) {
    return cli::load_verify_policy(p.trusted_key_files, {}, 1, p.min_security_version);
}

// The child's answer travels through a pipe as length-prefixed fields.
class Wire {
  public:
    void put(std::string_view s) {
        const auto n = static_cast<std::uint32_t>(s.size());
        bytes_.append(reinterpret_cast<const char*>(&n), sizeof n);
        bytes_.append(s);
    }
    void put(std::uint64_t v) {
        put(std::string_view(reinterpret_cast<const char*>(&v), sizeof v));
    }
    [[nodiscard]] const std::string& bytes() const { return bytes_; }

    explicit Wire(std::string bytes = {}) : bytes_(std::move(bytes)) {}
    bool get(std::string& s) {
        std::uint32_t n = 0;
        if (bytes_.size() - pos_ < sizeof n)
            return false;
        std::memcpy(&n, bytes_.data() + pos_, sizeof n);
        pos_ += sizeof n;
        if (bytes_.size() - pos_ < n)
            return false;
        s.assign(bytes_, pos_, n);
        pos_ += n;
        return true;
    }
    bool get(std::uint64_t& v) {
        std::string s;
        if (!get(s) || s.size() != sizeof v)
            return false;
        std::memcpy(&v, s.data(), sizeof v);
        return true;
    }

  private:
    std::string bytes_;
    std::size_t pos_ = 0;
};

void encode(Wire& w, const BootResult& r) {
    w.put(static_cast<std::uint64_t>(r.stage));
    w.put(std::uint64_t{r.esm_attempted});
    w.put(std::uint64_t{r.secure});
    w.put(r.esm_failure);
    w.put(r.outcome);
    w.put(std::uint64_t{r.exit_status.has_value()});
    w.put(r.exit_status.value_or(0));
    w.put(r.message);
}

bool decode(Wire& w, BootResult& r) {
    std::uint64_t stage = 0, attempted = 0, secure = 0, has_status = 0, status = 0;
    if (!w.get(stage) || !w.get(attempted) || !w.get(secure) || !w.get(r.esm_failure) ||
        !w.get(r.outcome) || !w.get(has_status) || !w.get(status) || !w.get(r.message))
        return false;
    r.stage = static_cast<BootResult::Stage>(stage);
    r.esm_attempted = attempted != 0;
    r.secure = secure != 0;
    if (has_status != 0)
        r.exit_status = status;
    return true;
}

// What `svmkit boot` does, in this (child) process.
BootResult boot_here(const std::string& path, const Policy& policy, const BootOptions& options) {
    BootResult r;
    auto verify_policy = load_policy(policy);
    if (!verify_policy) {
        r.stage = BootResult::Stage::platform_error;
        r.message = verify_policy.error().message;
        return r;
    }
    format::SecureImage image;
    if (options.layout != nullptr) {
        auto file = InputFile::open(path);
        if (!file) {
            r.stage = BootResult::Stage::load_failed;
            r.message = file.error().message;
            return r;
        }
        image = *options.layout;
        image.file = std::make_shared<const InputFile>(std::move(*file));
    } else {
        auto opened = format::open_image(path);
        if (!opened) {
            r.stage = BootResult::Stage::reader_refused;
            r.message = opened.error().message;
            return r;
        }
        image = std::move(*opened);
    }
    platform::MachineConfig config;
    config.memory_size = options.memory_size;
    config.policy.verify = std::move(*verify_policy);
    config.timeout = std::chrono::milliseconds(options.timeout_ms);
    config.hypervisor_path = SVMKIT_HYPERVISOR_PATH;
    auto machine = platform::Machine::create(std::move(config));
    if (!machine) {
        r.stage = BootResult::Stage::platform_error;
        r.message = machine.error().message;
        return r;
    }
    if (auto loaded = (*machine)->load(image); !loaded) {
        r.stage = BootResult::Stage::load_failed;
        r.message = loaded.error().message;
        return r;
    }
    if (auto ran = (*machine)->run(); !ran) {
        r.stage = BootResult::Stage::platform_error;
        r.message = ran.error().message;
        return r;
    }
    const platform::BootReport& report = (*machine)->report();
    r.stage = BootResult::Stage::ran;
    r.esm_attempted = report.esm.has_value();
    r.secure = report.esm && report.esm->ok();
    if (report.esm && !report.esm->ok())
        r.esm_failure = platform::esm_failure_name(report.esm->failure);
    r.outcome = platform::boot_outcome_name(report.outcome);
    r.exit_status = report.exit_status;
    r.message = report.message;
    return r;
}

bool write_all(int fd, const std::string& s) {
    std::size_t done = 0;
    while (done < s.size()) {
        const ssize_t n = ::write(fd, s.data() + done, s.size() - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return false;
        done += static_cast<std::size_t>(n);
    }
    return true;
}

} // namespace

std::string BootResult::verdict() const {
    switch (stage) {
    case Stage::reader_refused:
        return "reader refused the file";
    case Stage::load_failed:
        return "could not be loaded";
    case Stage::platform_error:
        return "platform error";
    case Stage::harness_crashed:
        return "CRASHED svmkit boot";
    case Stage::ran:
        break;
    }
    if (secure)
        return exit_status == 0u ? "ACCEPTED (secure, kernel ran)" : "ACCEPTED (secure)";
    if (esm_attempted)
        return "UV refused: " + esm_failure;
    return "stopped before ESM: " + outcome;
}

VerifyResult verify_file(const std::string& path, const Policy& policy) {
    VerifyResult r;
    auto verify_policy = load_policy(policy);
    if (!verify_policy) {
        r.exit_code = static_cast<int>(verify_policy.error().code);
        r.message = verify_policy.error().message;
        return r;
    }
    auto image = format::open_image(path);
    if (!image) {
        r.exit_code = static_cast<int>(image.error().code);
        r.message = image.error().message;
        return r;
    }
    r.opened = true;
    auto report = format::verify_image(*image, *verify_policy);
    if (!report) {
        r.exit_code = static_cast<int>(report.error().code);
        r.message = report.error().message;
        return r;
    }
    r.accepted = report->ok();
    r.exit_code = r.accepted ? 0 : static_cast<int>(ExitCode::verification_failed);
    for (const std::string& f : report->failures)
        r.message += (r.message.empty() ? "" : "; ") + f;
    return r;
}

BootResult boot_file(const std::string& path, const Policy& policy, const BootOptions& options) {
    int fds[2];
    BootResult crashed;
    if (::pipe(fds) != 0) {
        crashed.message = fmt::format("pipe: {}", std::strerror(errno));
        return crashed;
    }
    std::fflush(nullptr); // the child must not flush the parent's buffers again
    const pid_t pid = ::fork();
    if (pid < 0) {
        ::close(fds[0]);
        ::close(fds[1]);
        crashed.message = fmt::format("fork: {}", std::strerror(errno));
        return crashed;
    }
    if (pid == 0) {
        ::close(fds[0]);
        Wire w;
        encode(w, boot_here(path, policy, options));
        ::_exit(write_all(fds[1], w.bytes()) ? 0 : 1);
    }
    ::close(fds[1]);
    // A stuck child is stopped well after the machine's own timeout would have.
    const auto deadline =
        std::chrono::steady_clock::now() + std::chrono::milliseconds(options.timeout_ms + 30000);
    std::string answer;
    bool stuck = false;
    for (;;) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) {
            stuck = true;
            break;
        }
        pollfd p{fds[0], POLLIN, 0};
        const int ready = ::poll(&p, 1, static_cast<int>(left.count()));
        if (ready < 0 && errno == EINTR)
            continue;
        if (ready <= 0)
            continue;
        char buf[4096];
        const ssize_t n = ::read(fds[0], buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        answer.append(buf, static_cast<std::size_t>(n));
    }
    ::close(fds[0]);
    if (stuck)
        ::kill(pid, SIGKILL);
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    Wire w(std::move(answer));
    BootResult r;
    if (!stuck && WIFEXITED(status) && WEXITSTATUS(status) == 0 && decode(w, r))
        return r;
    crashed.message = stuck ? "svmkit boot did not finish (killed)"
                      : WIFSIGNALED(status)
                          ? fmt::format("svmkit boot died of signal {}", WTERMSIG(status))
                          : fmt::format("svmkit boot exited with {}", WEXITSTATUS(status));
    return crashed;
}

} // namespace svmkit::tamper
