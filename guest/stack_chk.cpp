// The stack protector's failure handler for freestanding guest code.
//
// Debian's libz.a and libfdt.a are built with -fstack-protector-strong. Their
// canary is read at %fs:0x28 on x86-64 (r13 - 0x7010 on ppc64le). On the
// simulated platform guest code runs natively on the machine process's
// thread, whose fs base is that thread's TLS with glibc's real canary, so the
// check works unchanged. A ppc64le stub must point r13 at a guard area first.
//
// The handler cannot reach the console: guest code has no writable globals
// to find the gates through, and a smashed stack is no place to look for
// them. It stops with a trap, which the machine reports as a guest fault at
// this address.
// The name is the compiler ABI's, reserved on purpose.
extern "C" [[noreturn]] void
__stack_chk_fail() { // NOLINT(bugprone-reserved-identifier,cert-dcl37-c,cert-dcl51-cpp)
    for (;;)
        __builtin_trap();
}
