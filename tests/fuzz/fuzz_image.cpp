// Fuzz target: the strict image reader as inspect/verify use it, on an
// untrusted file, then digest verification of whatever it accepts.
#include "format/image_reader.hpp"
#include "format/verify.hpp"

#include <sys/mman.h>
#include <unistd.h>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    int fd = ::memfd_create("fuzz-image", MFD_CLOEXEC);
    if (fd < 0)
        return 0;
    svmkit::UniqueFd owner(fd);
    if (::write(fd, data, size) != static_cast<ssize_t>(size))
        return 0;
    auto img = svmkit::format::open_image("/proc/self/fd/" + std::to_string(fd));
    if (!img)
        return 0;
    svmkit::format::VerifyPolicy policy;
    (void)svmkit::format::verify_image(*img, policy);
    return 0;
}
