// Unpacking the verified kernel from the image to its load address, and
// checking what was unpacked before anything runs it.
#include "stub/stub.h"

#include "guest/zalloc.h"

#include <string.h>
#include <zlib.h>

namespace svmkit::stub {

namespace {

// inflate's counters are 32-bit: feed it at most this much per call.
constexpr uint64_t kInflateChunk = 1u << 30;

void inflate_kernel(Stub& s, RegionAllocator& alloc, const Range& stored, uint8_t* out,
                    uint64_t out_size) {
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
    const uint8_t* in = gpa_ptr(stored.base);
    uint64_t in_left = stored.size;
    uint64_t out_left = out_size;
    int rc = Z_OK;
    while (rc == Z_OK) {
        if (z.avail_in == 0 && in_left > 0) {
            const uint64_t n = in_left < kInflateChunk ? in_left : kInflateChunk;
            z.next_in = const_cast<Bytef*>(in);
            z.avail_in = static_cast<uInt>(n);
            in += n;
            in_left -= n;
        }
        if (z.avail_out == 0 && out_left > 0) {
            const uint64_t n = out_left < kInflateChunk ? out_left : kInflateChunk;
            z.next_out = out;
            z.avail_out = static_cast<uInt>(n);
            out += n;
            out_left -= n;
        }
        // Z_BUF_ERROR (no progress possible) ends the loop too: the output
        // is full before the stream ends, or the stream is truncated.
        rc = inflate(&z, Z_NO_FLUSH);
    }
    const bool complete =
        rc == Z_STREAM_END && z.avail_in == 0 && in_left == 0 && z.avail_out == 0 && out_left == 0;
    inflateEnd(&z);
    if (!complete) {
        s.say("error: the kernel's gzip stream does not unpack to its recorded size (zlib ");
        s.con.sdec(rc).str(")").nl();
        s.stop();
    }
}

} // namespace

void unpack_kernel(Stub& s, RegionAllocator& alloc) {
    const ComponentView& k = s.manifest.get(ComponentId::kernel);
    const Range stored = s.placed(ComponentId::kernel);
    const uint64_t size = k.gzip ? k.unpacked_size : stored.size;
    if (size == 0 || size > k.memory_size)
        s.fatal("the kernel's image is larger than its memory size");
    uint8_t* load = gpa_ptr(k.load_address);
    if (k.gzip)
        inflate_kernel(s, alloc, stored, load, size);
    else
        memcpy(load, gpa_ptr(stored.base), size);
    // The rest of the kernel's memory (its bss) starts zeroed.
    memset(load + size, 0, k.memory_size - size);

    // Check what will run, where it will run: the unpacked digest of a gzip
    // kernel, or for a stored one the digest the ultravisor verified.
    uint8_t digest[kMaxDigestSize];
    sha2(s.manifest.hash, load, size, digest);
    const uint8_t* want = k.gzip ? k.unpacked_digest : k.digest;
    const size_t n = digest_size(s.manifest.hash);
    if (memcmp(digest, want, n) != 0) {
        s.say("error: the unpacked kernel's digest ").bytes_hex(digest, n);
        s.con.str(" is not the signed ").bytes_hex(want, n).nl();
        s.stop();
    }
    s.say("kernel ").dec(size).str(" bytes at ").hex(k.load_address);
    s.con.str(k.gzip ? " (inflated)" : " (copied)").str(", digest ok").nl();
    s.calls.hcall(H_SVMKIT_TRACE, SVMKIT_TRACE_KERNEL, k.load_address, size, k.gzip ? 1 : 0);
}

} // namespace svmkit::stub
