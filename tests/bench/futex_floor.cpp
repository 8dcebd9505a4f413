// The floor of tests/bench/gate_bench.sh: the same blocking round trip the
// vCPU's gate makes (platform/vcpu/channel.hpp), between two plain processes
// and nothing else: a shared page, a state word, FUTEX_WAKE and FUTEX_WAIT
// each way. Prints the median and p99 of ROUNDS round trips:
//   futex round trip: rounds N median_ns M p99_ns P
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <linux/futex.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

namespace {

constexpr int kRounds = 20000;
enum : std::uint32_t { kIdle = 0, kRequest = 1, kReply = 2, kQuit = 3 };

void wake(std::atomic<std::uint32_t>* w) {
    ::syscall(SYS_futex, w, FUTEX_WAKE, 1, nullptr, nullptr, 0);
}

// Waits until *w is `want` (or kQuit), sleeping in the kernel meanwhile.
std::uint32_t wait_for(std::atomic<std::uint32_t>* w, std::uint32_t want) {
    for (std::uint32_t s; (s = w->load(std::memory_order_acquire)) != want && s != kQuit;)
        ::syscall(SYS_futex, w, FUTEX_WAIT, s, nullptr, nullptr, 0);
    return w->load(std::memory_order_acquire);
}

} // namespace

int main() {
    void* page = ::mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (page == MAP_FAILED)
        return 1;
    auto* state = new (page) std::atomic<std::uint32_t>(kIdle);
    const pid_t pid = ::fork();
    if (pid < 0)
        return 1;
    if (pid == 0) { // the server: the machine's role
        while (wait_for(state, kRequest) != kQuit) {
            state->store(kReply, std::memory_order_release);
            wake(state);
        }
        ::_exit(0);
    }
    std::vector<std::int64_t> ns(kRounds);
    for (int i = 0; i < kRounds; ++i) {
        const auto t0 = std::chrono::steady_clock::now();
        state->store(kRequest, std::memory_order_release);
        wake(state);
        wait_for(state, kReply);
        ns[static_cast<std::size_t>(i)] = std::chrono::duration_cast<std::chrono::nanoseconds>(
                                              std::chrono::steady_clock::now() - t0)
                                              .count();
    }
    state->store(kQuit, std::memory_order_release);
    wake(state);
    ::waitpid(pid, nullptr, 0);
    std::sort(ns.begin(), ns.end());
    std::printf("futex round trip: rounds %d median_ns %lld p99_ns %lld\n", kRounds,
                static_cast<long long>(ns[ns.size() / 2]),
                static_cast<long long>(ns[ns.size() * 99 / 100]));
    return 0;
}
