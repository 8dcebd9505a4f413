// The device tree the simulated machine's firmware hands to the image.
//
//   /memreserve/ <fdt> <stack>;            what the firmware still uses
//   / {
//       #address-cells = <2>; #size-cells = <2>;
//       compatible = "svmkit,simulated-pef"; model = "svmkit simulated PEF machine";
//       memory@0 { device_type = "memory"; reg = <0 0 size>; };
//       chosen { };
//       virtio_mmio@<addr> { compatible = "virtio,mmio"; reg = <...>; };   (tests only, for now)
//   };
#pragma once

#include "base/error.hpp"

#include <cstddef>
#include <cstdint>
#include <vector>

namespace svmkit::platform {

struct Reservation {
    std::uint64_t base = 0;
    std::uint64_t size = 0;
};

struct PlatformFdtSpec {
    std::uint64_t memory_size = 0;
    std::vector<Reservation> reserved; // becomes the /memreserve/ table
    // Virtio device nodes without devices behind them yet (the virtio devices
    // come with the hypervisor process); lets tests check that the stub wires
    // every virtio node to the bounce pool.
    unsigned virtio_mmio_nodes = 0;
};

inline constexpr std::size_t kPlatformFdtMaxSize = 0x10000;

Result<std::vector<std::byte>> build_platform_fdt(const PlatformFdtSpec& spec);

} // namespace svmkit::platform
