// The boot stub placeholder.
//
// The image format reserves the stub's place (its code segment is the image's
// entry, its read-only data follows, and .kernel:esm_blob starts at
// __stub_end) before the real stub exists. This placeholder fills that place
// with real freestanding code built under the same rules as the real stub
// (no writable section, no relocation), so the layout and its invariant tests
// are exercised from the start. Entering it stops the machine.

extern "C" {

// Identifies the stub in the image; kept although nothing references it.
extern const char svmkit_stub_identity[];
__attribute__((used, section(".rodata.svmkit_identity"))) const char svmkit_stub_identity[] =
    "svmkit stub placeholder: entering this image stops the machine";

[[noreturn]] __attribute__((section(".text.entry"))) void svmkit_stub_entry() {
    for (;;)
        __builtin_trap();
}
}
