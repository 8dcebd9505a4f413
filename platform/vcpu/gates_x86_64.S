/* The vCPU's gates on x86-64 (svmkit-vcpu): entering guest code, and the
 * trampolines through which guest code reaches the machine (guest/gates.h).
 *
 * Why trampolines: a gate handler must not run on the guest's stack. That
 * stack lies in guest RAM, and UV_ESM remaps all of guest RAM while its
 * handler waits for the machine: the machine copies every page to secure
 * backing and wipes the hypervisor-visible copy, which this process still
 * maps until the reply tells it to remap. So each gate switches to a stack
 * of the vCPU's own, calls the C++ handler, switches back and returns.
 *
 * Leaving guest code (a successful UV_ESM: the guest resumes elsewhere): the
 * handler sets svmkit_gate_ctx.leave and returns normally; the trampoline
 * then restores the stack and callee-saved registers that svmkit_guest_enter
 * saved and returns from svmkit_guest_enter, a longjmp done by hand so the
 * handler's frames unwind normally.
 *
 * struct svmkit_gate_context (platform/vcpu/gates.hpp):
 *   0  host_rsp        saved by svmkit_guest_enter
 *   8  gate_stack_top  16-byte aligned; set by the vCPU before entering
 *   16 leave           non-zero: leave guest code after this gate
 */
    .set CTX_HOST_RSP, 0
    .set CTX_GATE_STACK_TOP, 8
    .set CTX_LEAVE, 16

    .bss
    .balign 64
    .globl svmkit_gate_ctx
    .hidden svmkit_gate_ctx
    .type svmkit_gate_ctx, @object
    .size svmkit_gate_ctx, 64
svmkit_gate_ctx:
    .zero 64

    .text

/* long svmkit_guest_enter(uint64_t entry_va, uint64_t r3, uint64_t r4,
 *                         uint64_t r5, const struct svmkit_gates* gates,
 *                         uint64_t stack_top_va)
 * Calls entry(r3, r4, r5, gates) on the guest stack. Returns 0 if the guest
 * returned from its entry, 1 if a gate handler asked to leave. */
    .globl svmkit_guest_enter
    .hidden svmkit_guest_enter
    .type svmkit_guest_enter, @function
svmkit_guest_enter:
    push %rbp
    mov %rsp, %rbp
    push %rbx
    push %r12
    push %r13
    push %r14
    push %r15
    sub $8, %rsp                 /* keeps %rsp 16-byte aligned */
    mov %rsp, svmkit_gate_ctx+CTX_HOST_RSP(%rip)
    movq $0, svmkit_gate_ctx+CTX_LEAVE(%rip)
    mov %rdi, %rax               /* entry */
    mov %rsi, %rdi               /* r3 */
    mov %rdx, %rsi               /* r4 */
    mov %rcx, %rdx               /* r5 */
    mov %r8, %rcx                /* gates */
    mov %r9, %rsp                /* the guest's stack */
    xor %ebp, %ebp               /* ends frame-pointer backtraces here */
    /* Nothing of the vCPU's in the other registers: guest code starts from
     * the same clean state at every entry. */
    xor %ebx, %ebx
    xor %r8d, %r8d
    xor %r9d, %r9d
    xor %r10d, %r10d
    xor %r11d, %r11d
    xor %r12d, %r12d
    xor %r13d, %r13d
    xor %r14d, %r14d
    xor %r15d, %r15d
    call *%rax
    xor %eax, %eax               /* the guest returned from its entry */
    jmp svmkit_gate_return_to_host
    .size svmkit_guest_enter, .-svmkit_guest_enter

/* Restores what svmkit_guest_enter saved and returns from it with %eax. */
    .globl svmkit_gate_return_to_host
    .hidden svmkit_gate_return_to_host
    .type svmkit_gate_return_to_host, @function
svmkit_gate_return_to_host:
    mov svmkit_gate_ctx+CTX_HOST_RSP(%rip), %rsp
    add $8, %rsp
    pop %r15
    pop %r14
    pop %r13
    pop %r12
    pop %rbx
    pop %rbp
    ret
    .size svmkit_gate_return_to_host, .-svmkit_gate_return_to_host

/* GATE name, handler: long name(struct svmkit_regs*) for guest code; calls
 * long handler(struct svmkit_regs*) on the gate stack. The guest's %rsp is
 * kept in %rbx, which the handler preserves (SysV ABI); the guest's %rbx is
 * kept on its own stack. %rdi (the registers) passes through untouched. */
    .macro GATE name, handler
    .globl \name
    .hidden \name
    .type \name, @function
\name:
    push %rbx
    mov %rsp, %rbx
    mov svmkit_gate_ctx+CTX_GATE_STACK_TOP(%rip), %rsp
    call \handler
    cmpq $0, svmkit_gate_ctx+CTX_LEAVE(%rip)
    jne 1f
    /* The handler's scratch registers hold the vCPU's pointers: clear them
     * (the guest expects them clobbered anyway; %rax is the result). */
    xor %ecx, %ecx
    xor %edx, %edx
    xor %esi, %esi
    xor %edi, %edi
    xor %r8d, %r8d
    xor %r9d, %r9d
    xor %r10d, %r10d
    xor %r11d, %r11d
    mov %rbx, %rsp
    pop %rbx
    ret
1:
    mov $1, %eax
    jmp svmkit_gate_return_to_host
    .size \name, .-\name
    .endm

    GATE svmkit_gate_ucall, svmkit_ucall_handler
    GATE svmkit_gate_hcall, svmkit_hcall_handler
    GATE svmkit_gate_mfmsr, svmkit_mfmsr_handler

    .section .note.GNU-stack, "", @progbits
