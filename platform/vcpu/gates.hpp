// The vCPU's side of the gate ABI (guest/gates.h): entering guest code and
// the trampolines of gates_x86_64.S, in svmkit-vcpu (vcpu_main.cpp).
//
// Guest code runs natively on the vCPU's one thread. The gates it calls
// switch to a gate stack of the vCPU's own and call
// svmkit_{ucall,hcall,mfmsr}_handler (vcpu_main.cpp), which cross to the
// machine in the svmkit process over the gate channel.
#pragma once

#include "guest/gates.h"

#include <cstdint>

extern "C" {

// Shared with the assembly; offsets are fixed there. Invariant: between
// svmkit_guest_enter and its return, host_rsp points at its saved registers
// and gate_stack_top at the top of a live, 16-byte-aligned gate stack.
struct svmkit_gate_context {
    std::uint64_t host_rsp;
    std::uint64_t gate_stack_top;
    std::uint64_t leave; // set by a handler: return from svmkit_guest_enter after this gate
    std::uint64_t reserved[5];
};
__attribute__((visibility("hidden"))) extern svmkit_gate_context svmkit_gate_ctx;

// What svmkit_guest_enter returns.
enum svmkit_guest_leave : long {
    SVMKIT_GUEST_RETURNED = 0, // the entry function returned
    SVMKIT_GUEST_LEFT = 1,     // a gate handler set `leave`
};

__attribute__((visibility("hidden"))) long
svmkit_guest_enter(std::uint64_t entry_va, std::uint64_t r3, std::uint64_t r4, std::uint64_t r5,
                   const svmkit_gates* gates, std::uint64_t stack_top_va);

// The gates guest code calls.
__attribute__((visibility("hidden"))) long svmkit_gate_ucall(svmkit_regs* regs);
__attribute__((visibility("hidden"))) long svmkit_gate_hcall(svmkit_regs* regs);
__attribute__((visibility("hidden"))) std::uint64_t svmkit_gate_mfmsr();

// Implemented by the vCPU; run on the gate stack.
long svmkit_ucall_handler(svmkit_regs* regs);
long svmkit_hcall_handler(svmkit_regs* regs);
std::uint64_t svmkit_mfmsr_handler();
}
