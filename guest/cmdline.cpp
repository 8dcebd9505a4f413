#include "guest/cmdline.h"

#include <string.h>

namespace svmkit::guest {

namespace {

bool is_space(char c) {
    return c == ' ' || c == '\t' || c == '\n';
}

} // namespace

bool cmdline_param(const char* cmdline, size_t len, const char* name, const char** value,
                   size_t* value_len) {
    const size_t name_len = strlen(name);
    bool found = false;
    size_t i = 0;
    while (i < len) {
        while (i < len && is_space(cmdline[i]))
            ++i;
        const size_t start = i;
        while (i < len && !is_space(cmdline[i]))
            ++i;
        const size_t word_len = i - start;
        if (word_len > name_len && memcmp(cmdline + start, name, name_len) == 0 &&
            cmdline[start + name_len] == '=') {
            *value = cmdline + start + name_len + 1;
            *value_len = word_len - name_len - 1;
            found = true;
        }
    }
    return found;
}

bool parse_size(const char* s, size_t len, uint64_t* out) {
    if (len == 0)
        return false;
    uint64_t unit = 1;
    switch (s[len - 1]) {
    case 'k':
    case 'K':
        unit = 1ull << 10;
        break;
    case 'm':
    case 'M':
        unit = 1ull << 20;
        break;
    case 'g':
    case 'G':
        unit = 1ull << 30;
        break;
    default:
        break;
    }
    if (unit != 1)
        --len;
    if (len == 0)
        return false;
    uint64_t v = 0;
    for (size_t i = 0; i < len; ++i) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        if (__builtin_mul_overflow(v, 10, &v) ||
            __builtin_add_overflow(v, static_cast<uint64_t>(s[i] - '0'), &v))
            return false;
    }
    return !__builtin_mul_overflow(v, unit, out);
}

} // namespace svmkit::guest
