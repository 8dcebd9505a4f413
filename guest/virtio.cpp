#include "guest/virtio.h"

#include <string.h>

namespace svmkit::guest {

// A switch of string literals, not a table of pointers: a position-independent
// image would have to keep such a table in writable memory.
const char* virtio_err_name(VirtioErr e) {
    switch (e) {
    case VirtioErr::none:
        return "none";
    case VirtioErr::transport:
        return "transport";
    case VirtioErr::not_virtio:
        return "not_virtio";
    case VirtioErr::bad_version:
        return "bad_version";
    case VirtioErr::wrong_device:
        return "wrong_device";
    case VirtioErr::missing_feature:
        return "missing_feature";
    case VirtioErr::features_rejected:
        return "features_rejected";
    case VirtioErr::device_failed:
        return "device_failed";
    case VirtioErr::queue_unavailable:
        return "queue_unavailable";
    case VirtioErr::no_memory:
        return "no_memory";
    case VirtioErr::bad_argument:
        return "bad_argument";
    case VirtioErr::queue_full:
        return "queue_full";
    case VirtioErr::used_idx:
        return "used_idx";
    case VirtioErr::used_id_range:
        return "used_id_range";
    case VirtioErr::used_not_head:
        return "used_not_head";
    case VirtioErr::used_twice:
        return "used_twice";
    case VirtioErr::used_len:
        return "used_len";
    case VirtioErr::queue_broken:
        return "queue_broken";
    case VirtioErr::dma_pool_full:
        return "dma_pool_full";
    case VirtioErr::dma_error:
        return "dma_error";
    case VirtioErr::io_error:
        return "io_error";
    case VirtioErr::unsupported:
        return "unsupported";
    case VirtioErr::bad_status:
        return "bad_status";
    case VirtioErr::read_only:
        return "read_only";
    case VirtioErr::out_of_range:
        return "out_of_range";
    }
    return "unknown";
}

void VirtioReport::append(const char* s, size_t n) {
    const size_t room = kMessageMax - len_;
    if (n > room)
        n = room;
    memcpy(message_ + len_, s, n);
    len_ += n;
    message_[len_] = '\0';
}

VirtioReport& VirtioReport::begin(VirtioErr code, const char* who) {
    code_ = code;
    len_ = 0;
    message_[0] = '\0';
    str(who);
    return str(": ");
}

VirtioReport& VirtioReport::str(const char* s) {
    append(s, strlen(s));
    return *this;
}

VirtioReport& VirtioReport::dec(uint64_t v) {
    char buf[20];
    const size_t i = format_dec(v, buf);
    append(buf + i, sizeof(buf) - i);
    return *this;
}

VirtioReport& VirtioReport::hex(uint64_t v) {
    char buf[20];
    size_t i = format_hex(v, buf);
    buf[--i] = 'x';
    buf[--i] = '0';
    append(buf + i, sizeof(buf) - i);
    return *this;
}

void VirtioReport::end() {
    ++count_;
    if (console_ != nullptr)
        console_->str("virtio: ").write(message_, len_).nl();
}

} // namespace svmkit::guest
