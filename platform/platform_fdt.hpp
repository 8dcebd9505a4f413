// The device tree the simulated machine's firmware hands to the image.
//
//   /memreserve/ <fdt> <stack>;            what the firmware still uses
//   / {
//       #address-cells = <2>; #size-cells = <2>;
//       compatible = "svmkit,simulated-pef"; model = "svmkit simulated PEF machine";
//       memory@0 { device_type = "memory"; reg = <0 0 size>; };
//       chosen { };                    (bootargs, linux,initrd-start/end for a loader)
//       virtio_mmio@<addr> { compatible = "virtio,mmio"; reg = <...>; };   (tests only, for now)
//   };
#pragma once

#include "base/error.hpp"

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace svmkit::platform {

struct Reservation {
    std::uint64_t base = 0;
    std::uint64_t size = 0;
};

struct PlatformFdtSpec {
    std::uint64_t memory_size = 0;
    std::vector<Reservation> reserved; // becomes the /memreserve/ table
    // virtio-mmio device nodes, one per window (the first ones have devices
    // behind them; tests may ask for more to check the stub's wiring).
    unsigned virtio_mmio_nodes = 0;
    // /chosen for a normal guest program (the boot loader): the platform
    // command line, and an image placed like an initrd (kexec-style boot).
    std::string bootargs;
    std::optional<Reservation> initrd;
};

inline constexpr std::size_t kPlatformFdtMaxSize = 0x10000;

// virtio-mmio windows: device i at kVirtioMmioBase + i * kVirtioMmioStride,
// kVirtioMmioSize bytes (above any RAM size svmkit boot accepts; 4 KiB apart
// like QEMU's virt machine).
inline constexpr std::uint64_t kVirtioMmioBase = 0x100000000000;
inline constexpr std::uint64_t kVirtioMmioStride = 0x1000;
inline constexpr std::uint64_t kVirtioMmioSize = 0x200;
inline constexpr std::uint64_t kVirtioMmioQueueNotify = 0x050;
inline constexpr std::uint64_t kVirtioMmioInterruptStatus = 0x060;
inline constexpr std::uint64_t kVirtioMmioInterruptAck = 0x064;

Result<std::vector<std::byte>> build_platform_fdt(const PlatformFdtSpec& spec);

} // namespace svmkit::platform
