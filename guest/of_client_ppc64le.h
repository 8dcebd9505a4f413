// The Open Firmware client interface (IEEE 1275 and its PowerPC binding), as
// SLOF offers it to the image it starts: the few services the ppc64le stub
// needs (find a node, read and set a property, claim memory, write to the
// console, exit), and what flattening the firmware's device tree and handing
// the machine over need (walk the tree, open a package, call its methods,
// quiesce).
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
    // The tree, as of_flatten.h walks it (raw answers: 0 = none,
    // kOfInvalid = the call failed; lengths -1 when absent).
    uint32_t peer(uint32_t phandle) const;
    uint32_t child(uint32_t phandle) const;
    int32_t getproplen(uint32_t phandle, const char* name) const;
    // 1 and the next property's name in `buf` (at least 32 bytes, the
    // firmware does not take its size), 0 after the last one, -1 on error.
    int32_t nextprop(uint32_t phandle, const char* previous, char* buf) const;
    int32_t package_to_path(uint32_t phandle, char* buf, uint32_t size) const;
    uint32_t instance_to_package(uint32_t ihandle) const;
    // Opens a device by path: its instance handle, or kOfInvalid.
    uint32_t open(const char* path) const;
    // call-method `method` of instance `ihandle` with one argument; true when
    // the firmware ran it and it threw nothing (catch-result 0), with its
    // first result in `*result`.
    bool call_method(const char* method, uint32_t ihandle, uint32_t arg, uint32_t* result) const;
    // Stops the firmware's devices (pending DMA, timers) before the OS
    // takes over; no client call may follow.
    void quiesce() const;
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
