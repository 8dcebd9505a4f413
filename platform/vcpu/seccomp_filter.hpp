// The vCPU's seccomp-BPF filter: the system calls the gate trampoline needs,
// each with its argument checks, and nothing else (docs/platform.md lists
// them). A call of the x86-64 ABI that the list does not allow goes to the
// svmkit process as a seccomp user notification (the kernel's record of the
// call number and arguments; the machine stops the VM with guest-violation);
// a call of another ABI (x32, i386) kills the vCPU outright.
//
// Sanitizer-free and dependency-free: built into svmkit-vcpu (the same binary
// and filter in every build) and into the unit tests that run it.
#pragma once

#include <cstdint>
#include <linux/filter.h>
#include <vector>

namespace svmkit::platform::vcpu {

struct FilterSpec {
    std::uint64_t guest_base = 0;  // guest RAM: [guest_base, guest_base + memory_size)
    std::uint64_t memory_size = 0; // non-zero, guest_base + memory_size does not overflow
    std::uint64_t futex_word = 0;  // the channel's state word in the vCPU
    int setup_socket_fd = -1;      // sendmsg is allowed on this descriptor only
    int memory_fds[2] = {-1, -1};  // mmap is allowed from these only
};

// The program, ready for SECCOMP_SET_MODE_FILTER.
std::vector<sock_filter> build_filter(const FilterSpec& spec);

} // namespace svmkit::platform::vcpu
