#include "guest/console.h"

#include <string.h>

namespace svmkit::guest {

Console& Console::write(const char* s, size_t n) {
    calls_.console_write(s, n);
    return *this;
}

Console& Console::str(const char* s) {
    return write(s, strlen(s));
}

size_t format_hex(uint64_t v, char (&buf)[20]) {
    size_t i = sizeof(buf);
    do {
        buf[--i] = "0123456789abcdef"[v & 0xf];
        v >>= 4;
    } while (v != 0);
    return i;
}

size_t format_dec(uint64_t v, char (&buf)[20]) {
    size_t i = sizeof(buf);
    do {
        buf[--i] = static_cast<char>('0' + v % 10);
        v /= 10;
    } while (v != 0);
    return i;
}

Console& Console::hex(uint64_t v) {
    char buf[20];
    size_t i = format_hex(v, buf);
    buf[--i] = 'x';
    buf[--i] = '0';
    return write(buf + i, sizeof(buf) - i);
}

Console& Console::dec(uint64_t v) {
    char buf[20];
    const size_t i = format_dec(v, buf);
    return write(buf + i, sizeof(buf) - i);
}

Console& Console::sdec(int64_t v) {
    if (v < 0) {
        write("-", 1);
        return dec(static_cast<uint64_t>(-(v + 1)) + 1);
    }
    return dec(static_cast<uint64_t>(v));
}

Console& Console::bytes_hex(const uint8_t* p, size_t n) {
    for (size_t i = 0; i < n; ++i) {
        const char two[2] = {"0123456789abcdef"[p[i] >> 4], "0123456789abcdef"[p[i] & 0xf]};
        write(two, 2);
    }
    return *this;
}

} // namespace svmkit::guest
