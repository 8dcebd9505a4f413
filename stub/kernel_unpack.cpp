// Unpacking the verified kernel from the image to its load address, and
// checking what was unpacked before anything runs it.
#include "stub/stub.h"

#include "guest/icache.h"
#include "guest/zalloc.h"

#include <string.h>
#include <zlib.h>

namespace svmkit::stub {

namespace {

// inflate's counters are 32-bit: feed it at most this much per call.
constexpr uint64_t kInflateChunk = 1u << 30;

struct Input {
    const uint8_t* next;
    uint64_t left; // bytes not yet handed to inflate
};

// Runs inflate into [dst, dst + n), handing it input as it needs. Returns
// zlib's last code; *written = the bytes written at dst. With `until_full`
// it stops once dst is full; otherwise it goes on until inflate stops
// (Z_BUF_ERROR, no progress possible, ends the loop too: the output is full
// before the stream ends, or the stream is truncated).
int inflate_into(z_stream& z, Input& in, uint8_t* dst, uint64_t n, bool until_full,
                 uint64_t* written) {
    uint64_t out_left = n;
    z.next_out = dst;
    z.avail_out = 0;
    int rc = Z_OK;
    while (rc == Z_OK) {
        if (z.avail_in == 0 && in.left > 0) {
            const uint64_t c = in.left < kInflateChunk ? in.left : kInflateChunk;
            z.next_in = const_cast<Bytef*>(in.next);
            z.avail_in = static_cast<uInt>(c);
            in.next += c;
            in.left -= c;
        }
        if (z.avail_out == 0 && out_left > 0) {
            const uint64_t c = out_left < kInflateChunk ? out_left : kInflateChunk;
            z.avail_out = static_cast<uInt>(c);
            out_left -= c;
        } else if (z.avail_out == 0 && until_full) {
            break;
        }
        rc = inflate(&z, Z_NO_FLUSH);
    }
    *written = n - out_left - z.avail_out;
    return rc;
}

// `held` leading bytes of what belongs at `out` go to `head` instead (see
// Stub::head_held); the rest is written in place.
void inflate_kernel(Stub& s, RegionAllocator& alloc, const Range& stored, uint8_t* out,
                    uint64_t out_size, uint8_t* head, uint64_t held) {
    Range scratch;
    if (!alloc.allocate(kInflateScratch, kPageSize, &scratch))
        s.fatal("no room for inflate's scratch memory");
    BumpArena arena{gpa_ptr(scratch.base), scratch.size, 0};
    z_stream z;
    memset(&z, 0, sizeof z);
    z.zalloc = zcalloc;
    z.zfree = zcfree;
    z.opaque = &arena;
    // windowBits 15 + 16: a gzip stream only, as svmkit build writes it.
    if (inflateInit2(&z, 15 + 16) != Z_OK)
        s.fatal("inflateInit2 failed");
    Input in{gpa_ptr(stored.base), stored.size};
    uint64_t done = 0;
    int rc = Z_OK;
    if (out == nullptr) {
        // zlib refuses a null output pointer, but a POWER kernel loads at
        // physical 0, which is pointer 0 in real mode: its first page is
        // unpacked into scratch memory and copied down.
        Range page;
        if (!alloc.allocate(kPageSize, kPageSize, &page))
            s.fatal("no room for inflate's scratch memory");
        const uint64_t n = out_size < kPageSize ? out_size : kPageSize;
        rc = inflate_into(z, in, gpa_ptr(page.base), n, true, &done);
        const uint64_t kept = held < done ? held : done;
        memcpy(head, gpa_ptr(page.base), kept);
        // Hidden from GCC, which would otherwise see a copy to null here.
        uint8_t* first = out;
        asm("" : "+r"(first));
        memcpy(first + kept, gpa_ptr(page.base) + kept, done - kept);
    }
    if (rc == Z_OK) {
        uint64_t written = 0;
        rc = inflate_into(z, in, out + done, out_size - done, false, &written);
        done += written;
    }
    const bool complete = rc == Z_STREAM_END && z.avail_in == 0 && in.left == 0 && done == out_size;
    inflateEnd(&z);
    if (!complete) {
        s.say("error: the kernel's gzip stream does not unpack to its recorded size (zlib ");
        s.con.sdec(rc).str(")").nl();
        s.stop();
    }
}

} // namespace

void unpack_kernel(Stub& s, RegionAllocator& alloc, uint64_t at) {
    const ComponentView& k = s.manifest.get(ComponentId::kernel);
    const Range stored = s.placed(ComponentId::kernel);
    const uint64_t size = k.gzip ? k.unpacked_size : stored.size;
    if (size == 0 || size > k.memory_size)
        s.fatal("the kernel's image is larger than its memory size");
    uint8_t* load = gpa_ptr(at);
    // Only a kernel loaded at 0 covers where parked CPUs spin.
    const uint64_t wanted = at == 0 && s.head_held <= Stub::kMaxHeadHeld ? s.head_held : 0;
    const uint64_t held = wanted < size ? wanted : 0;
    if (k.gzip) {
        inflate_kernel(s, alloc, stored, load, size, s.head, held);
    } else {
        memcpy(s.head, gpa_ptr(stored.base), held);
        // Hidden from GCC, which would otherwise see a copy to null here.
        uint8_t* to = load;
        asm("" : "+r"(to));
        memcpy(to + held, gpa_ptr(stored.base) + held, size - held);
    }
    s.head_size = held;
    // The rest of the kernel's memory (its bss) starts zeroed.
    memset(load + size, 0, k.memory_size - size);
    // Written as data, about to run as code.
    sync_icache(load, k.memory_size);

    // Check what will run, where it will run: the unpacked digest of a gzip
    // kernel, or for a stored one the digest the ultravisor verified (the
    // held head included: it is what enter_kernel() writes at `at`).
    uint8_t digest[kMaxDigestSize];
    Sha2 hash(s.manifest.hash);
    hash.update(s.head, held);
    hash.update(load + held, size - held);
    hash.final(digest);
    const uint8_t* want = k.gzip ? k.unpacked_digest : k.digest;
    const size_t n = digest_size(s.manifest.hash);
    if (memcmp(digest, want, n) != 0) {
        s.say("error: the unpacked kernel's digest ").bytes_hex(digest, n);
        s.con.str(" is not the signed ").bytes_hex(want, n).nl();
        s.stop();
    }
    s.say("kernel ").dec(size).str(" bytes at ").hex(at);
    s.con.str(k.gzip ? " (inflated)" : " (copied)").str(", digest ok").nl();
    s.calls.trace(SVMKIT_TRACE_KERNEL, at, size, k.gzip ? 1 : 0);
}

} // namespace svmkit::stub
