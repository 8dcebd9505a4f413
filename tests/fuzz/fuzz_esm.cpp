// Fuzz target: the simulated ultravisor's UV_ESM on guest memory the
// hypervisor and guest control before ESM: the FDT passed in r5 and the ESM
// blob it points at. Input layout: [u32 fdt size][fdt bytes][blob bytes].
#include "platform/guest_memory.hpp"
#include "platform/ultravisor.hpp"

#include <cstring>

namespace {
constexpr std::uint64_t kMemory = 2u << 20;
constexpr std::uint64_t kFdtAt = 0x10000;
constexpr std::uint64_t kBlobAt = 0x100000;
} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 4)
        return 0;
    std::uint32_t fdt_size = 0;
    std::memcpy(&fdt_size, data, 4);
    data += 4;
    size -= 4;
    fdt_size = static_cast<std::uint32_t>(std::min<std::size_t>(fdt_size, size));
    if (fdt_size > kBlobAt - kFdtAt || size - fdt_size > kMemory - kBlobAt)
        return 0;
    auto memory = svmkit::platform::GuestMemory::create(kMemory);
    if (!memory)
        std::abort(); // the fixed guest base must be free in the fuzzer process
    auto bytes = std::as_bytes(std::span(data, size));
    (void)memory->write(kFdtAt, bytes.first(fdt_size));
    (void)memory->write(kBlobAt, bytes.subspan(fdt_size));
    svmkit::platform::EsmPolicy policy;
    (void)svmkit::platform::enter_secure_mode(*memory, 0, kFdtAt, policy);
    return 0;
}
