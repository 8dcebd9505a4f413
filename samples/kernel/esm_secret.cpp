#include "samples/kernel/esm_secret.h"

#include "guest/cmdline.h"
#include "guest/sha2.h"
#include "guest/uv_abi.h"

#include <string.h>

namespace svmkit::sample {

namespace {

using guest::HashAlgorithm;

constexpr uint64_t kMaxReads = 100000;
constexpr uint64_t kMaxFileSize = 4u << 20; // the blob's own limit

struct FileRead {
    long status = 0; // U_* of the first failing call, else U_SUCCESS
    uint64_t size = 0;
    uint64_t calls = 0;
    uint8_t digest[32] = {};
};

// One sequential read of the whole file, hashing it.
FileRead read_once(const guest::Calls& calls, const char* name, size_t name_len) {
    FileRead r;
    guest::Sha2 hash(HashAlgorithm::sha256);
    for (;;) {
        svmkit_regs regs{};
        regs.r[3] = UV_ESMB_GET_FILE;
        regs.r[4] = r.size;
        svmkit_uv_pack_bytes(reinterpret_cast<const uint8_t*>(name), name_len, &regs.r[5],
                             UV_ESMB_NAME_MAX / 8);
        const long n = calls.gates()->ucall(&regs);
        ++r.calls;
        if (n < 0 || n > UV_ESMB_CHUNK || r.size + static_cast<uint64_t>(n) > kMaxFileSize) {
            r.status = n < 0 ? n : U_PARAMETER;
            return r;
        }
        if (n == 0)
            break;
        uint8_t chunk[UV_ESMB_CHUNK];
        svmkit_uv_unpack_bytes(&regs.r[4], UV_ESMB_CHUNK / 8, chunk);
        hash.update(chunk, static_cast<size_t>(n));
        memset(chunk, 0, sizeof chunk);
        r.size += static_cast<uint64_t>(n);
    }
    hash.final(r.digest);
    return r;
}

void hex_bytes(guest::Console& con, const uint8_t* b, size_t n) {
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; ++i) {
        const char pair[2] = {digits[b[i] >> 4], digits[b[i] & 15]};
        con.write(pair, 2);
    }
}

} // namespace

bool read_esm_secret_file(const guest::Calls& calls, guest::Console& con, const char* bootargs,
                          int bootargs_len) {
    if (bootargs == nullptr || bootargs_len <= 0)
        return true;
    const size_t len = static_cast<size_t>(bootargs_len);
    const char* name = nullptr;
    size_t name_len = 0;
    if (!guest::cmdline_param(bootargs, len, "svmkit.secret_file", &name, &name_len))
        return true;
    uint64_t reads = 1;
    const char* v = nullptr;
    size_t v_len = 0;
    if (guest::cmdline_param(bootargs, len, "svmkit.secret_file_reads", &v, &v_len)) {
        reads = 0;
        for (size_t i = 0; i < v_len && reads <= kMaxReads; ++i)
            reads = v[i] >= '0' && v[i] <= '9' ? reads * 10 + static_cast<uint64_t>(v[i] - '0')
                                               : kMaxReads + 1;
    }
    con.str("svmkit sample kernel: secret file ").write(name, name_len);
    if (name_len == 0 || name_len > UV_ESMB_NAME_MAX || reads == 0 || reads > kMaxReads) {
        con.str(": FAILED: bad svmkit.secret_file or svmkit.secret_file_reads").nl();
        return false;
    }
    FileRead first = read_once(calls, name, name_len);
    uint64_t total_calls = first.calls;
    for (uint64_t i = 1; i < reads && first.status == U_SUCCESS; ++i) {
        const FileRead again = read_once(calls, name, name_len);
        total_calls += again.calls;
        if (again.status != U_SUCCESS) {
            first.status = again.status;
            break;
        }
        if (again.size != first.size || memcmp(again.digest, first.digest, 32) != 0) {
            con.str(": FAILED: read ").dec(i + 1).str(" differs from the first").nl();
            return false;
        }
    }
    if (first.status != U_SUCCESS) {
        con.str(": FAILED: UV_ESMB_GET_FILE returned ")
            .str(svmkit_uv_code_name(first.status))
            .str(" after ")
            .dec(total_calls)
            .str(" calls")
            .nl();
        return false;
    }
    con.str(": ").dec(first.size).str(" bytes in ").dec(total_calls).str(" calls (");
    con.dec(reads).str(" reads), sha256 ");
    hex_bytes(con, first.digest, sizeof first.digest);
    con.nl();
    return true;
}

} // namespace svmkit::sample
