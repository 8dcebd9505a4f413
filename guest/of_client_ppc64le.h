// The Open Firmware client interface (IEEE 1275 and its PowerPC binding), as
// SLOF offers it to the image it starts: the few services the ppc64le stub
// needs (find a node, read and set a property, claim memory, write to the
// console, exit).
//
// A client call passes one argument block: the service name, the number of
// arguments and of results, then the arguments and room for the results,
// each a 32-bit big-endian cell. Addresses are cells too, so every buffer
// handed to the firmware must lie below 4 GiB (calls refuse others).
#pragma once

#include <stddef.h>
#include <stdint.h>

namespace svmkit::guest {

// A phandle or address the firmware reports as "none" (-1).
inline constexpr uint32_t kOfInvalid = 0xffffffff;

class OpenFirmware {
  public:
    static constexpr int kMaxCells = 10; // arguments + results per call

    explicit OpenFirmware(uint64_t entry) : entry_(entry) {}
    uint64_t entry() const { return entry_; }

    // Calls `service` with nargs argument cells; stores nret result cells in
    // `rets`. False when the firmware failed the call itself (an unknown
    // service) or the counts exceed kMaxCells.
    bool call(const char* service, const uint32_t* args, int nargs, uint32_t* rets, int nret) const;

    // A device-tree node's phandle, or kOfInvalid.
    uint32_t finddevice(const char* path) const;
    // Copies up to `size` bytes of the property and returns its full length,
    // or -1 when there is no such property.
    int32_t getprop(uint32_t phandle, const char* name, void* buf, uint32_t size) const;
    bool setprop(uint32_t phandle, const char* name, const void* value, uint32_t size) const;
    // Claims `size` bytes of memory: at `address` when `align` is 0, else
    // anywhere with that alignment. The claimed address, or kOfInvalid.
    uint32_t claim(uint32_t address, uint32_t size, uint32_t align) const;
    // Writes to an open instance (the console: /chosen "stdout").
    void write(uint32_t ihandle, const char* s, size_t n) const;
    // The console's instance handle from /chosen "stdout", or 0.
    uint32_t stdout_ihandle() const;
    // Returns control to the firmware (its prompt). Never returns.
    [[noreturn]] void exit() const;

  private:
    uint64_t entry_;
};

} // namespace svmkit::guest
