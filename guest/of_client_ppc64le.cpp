#include "guest/of_client_ppc64le.h"

#include "guest/firmware_call_ppc64le.h"

#include <string.h>

namespace svmkit::guest {

namespace {

// Host (little-endian) order <-> a big-endian cell; its own inverse.
inline uint32_t be_cell(uint32_t v) {
    return __builtin_bswap32(v);
}

// An address as a cell; kOfInvalid (which no buffer of ours can have) when
// it does not fit.
uint32_t cell(const void* p, uint64_t size = 1) {
    if (!below_4g(p, size))
        return kOfInvalid;
    return static_cast<uint32_t>(reinterpret_cast<uintptr_t>(p));
}

} // namespace

bool OpenFirmware::call(const char* service, const uint32_t* args, int nargs, uint32_t* rets,
                        int nret) const {
    if (nargs < 0 || nret < 0 || nargs + nret > kMaxCells)
        return false;
    // service, nargs, nret, then the arguments and the results.
    uint32_t block[3 + kMaxCells] __attribute__((aligned(8)));
    const uint32_t name = cell(service, strlen(service) + 1);
    if (name == kOfInvalid || cell(block, sizeof block) == kOfInvalid)
        return false;
    block[0] = be_cell(name);
    block[1] = be_cell(static_cast<uint32_t>(nargs));
    block[2] = be_cell(static_cast<uint32_t>(nret));
    for (int i = 0; i < nargs; ++i)
        block[3 + i] = be_cell(args[i]);
    for (int i = 0; i < nret; ++i)
        block[3 + nargs + i] = be_cell(kOfInvalid);
    const long rc = svmkit_call_be_firmware(reinterpret_cast<uintptr_t>(block), 0, entry_);
    for (int i = 0; i < nret; ++i)
        rets[i] = be_cell(block[3 + nargs + i]);
    return rc == 0;
}

uint32_t OpenFirmware::finddevice(const char* path) const {
    const uint32_t args[1] = {cell(path, strlen(path) + 1)};
    uint32_t phandle = kOfInvalid;
    if (args[0] == kOfInvalid || !call("finddevice", args, 1, &phandle, 1))
        return kOfInvalid;
    // Some firmware reports "not found" as 0.
    return phandle == 0 ? kOfInvalid : phandle;
}

int32_t OpenFirmware::getprop(uint32_t phandle, const char* name, void* buf, uint32_t size) const {
    const uint32_t args[4] = {phandle, cell(name, strlen(name) + 1), cell(buf, size), size};
    uint32_t len = kOfInvalid;
    if (args[1] == kOfInvalid || args[2] == kOfInvalid || !call("getprop", args, 4, &len, 1))
        return -1;
    return static_cast<int32_t>(len);
}

bool OpenFirmware::setprop(uint32_t phandle, const char* name, const void* value,
                           uint32_t size) const {
    const uint32_t args[4] = {phandle, cell(name, strlen(name) + 1), cell(value, size), size};
    uint32_t len = kOfInvalid;
    if (args[1] == kOfInvalid || args[2] == kOfInvalid || !call("setprop", args, 4, &len, 1))
        return false;
    return len == size;
}

uint32_t OpenFirmware::claim(uint32_t address, uint32_t size, uint32_t align) const {
    const uint32_t args[3] = {address, size, align};
    uint32_t base = kOfInvalid;
    if (!call("claim", args, 3, &base, 1))
        return kOfInvalid;
    // A fixed claim yields exactly the address asked for, or failed.
    if (align == 0 && base != address)
        return kOfInvalid;
    return base;
}

uint32_t OpenFirmware::peer(uint32_t phandle) const {
    uint32_t next = kOfInvalid;
    return call("peer", &phandle, 1, &next, 1) ? next : kOfInvalid;
}

uint32_t OpenFirmware::child(uint32_t phandle) const {
    uint32_t next = kOfInvalid;
    return call("child", &phandle, 1, &next, 1) ? next : kOfInvalid;
}

int32_t OpenFirmware::getproplen(uint32_t phandle, const char* name) const {
    const uint32_t args[2] = {phandle, cell(name, strlen(name) + 1)};
    uint32_t len = kOfInvalid;
    if (args[1] == kOfInvalid || !call("getproplen", args, 2, &len, 1))
        return -1;
    return static_cast<int32_t>(len);
}

int32_t OpenFirmware::nextprop(uint32_t phandle, const char* previous, char* buf) const {
    const uint32_t args[3] = {phandle, cell(previous, strlen(previous) + 1), cell(buf, 32)};
    uint32_t flag = kOfInvalid;
    if (args[1] == kOfInvalid || args[2] == kOfInvalid || !call("nextprop", args, 3, &flag, 1))
        return -1;
    return static_cast<int32_t>(flag);
}

int32_t OpenFirmware::package_to_path(uint32_t phandle, char* buf, uint32_t size) const {
    const uint32_t args[3] = {phandle, cell(buf, size), size};
    uint32_t len = kOfInvalid;
    if (args[1] == kOfInvalid || !call("package-to-path", args, 3, &len, 1))
        return -1;
    return static_cast<int32_t>(len);
}

uint32_t OpenFirmware::instance_to_package(uint32_t ihandle) const {
    uint32_t phandle = kOfInvalid;
    return call("instance-to-package", &ihandle, 1, &phandle, 1) ? phandle : kOfInvalid;
}

uint32_t OpenFirmware::open(const char* path) const {
    const uint32_t args[1] = {cell(path, strlen(path) + 1)};
    uint32_t ihandle = kOfInvalid;
    if (args[0] == kOfInvalid || !call("open", args, 1, &ihandle, 1))
        return kOfInvalid;
    // Some firmware reports failure as 0.
    return ihandle == 0 ? kOfInvalid : ihandle;
}

bool OpenFirmware::call_method(const char* method, uint32_t ihandle, uint32_t arg,
                               uint32_t* result) const {
    const uint32_t args[3] = {cell(method, strlen(method) + 1), ihandle, arg};
    uint32_t rets[2] = {kOfInvalid, kOfInvalid};
    if (args[0] == kOfInvalid || !call("call-method", args, 3, rets, 2) || rets[0] != 0)
        return false;
    *result = rets[1];
    return true;
}

void OpenFirmware::quiesce() const {
    call("quiesce", nullptr, 0, nullptr, 0);
}

void OpenFirmware::write(uint32_t ihandle, const char* s, size_t n) const {
    while (n > 0) {
        const uint32_t chunk = n < 4096 ? static_cast<uint32_t>(n) : 4096;
        const uint32_t args[3] = {ihandle, cell(s, chunk), chunk};
        uint32_t written = 0;
        if (args[1] == kOfInvalid || !call("write", args, 3, &written, 1))
            return;
        s += chunk;
        n -= chunk;
    }
}

uint32_t OpenFirmware::stdout_ihandle() const {
    const uint32_t chosen = finddevice("/chosen");
    uint32_t ihandle = 0;
    if (chosen == kOfInvalid || getprop(chosen, "stdout", &ihandle, sizeof ihandle) != 4)
        return 0;
    return be_cell(ihandle);
}

void OpenFirmware::exit() const {
    call("exit", nullptr, 0, nullptr, 0);
    for (;;)
        asm volatile("" ::: "memory");
}

} // namespace svmkit::guest
