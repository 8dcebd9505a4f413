// The few C library functions freestanding guest code needs: ours, and those
// that Debian's static libfdt.a and libz.a (inflate only) call. Checked with
// `nm -u` on the archive members the stub and the sample kernel pull in:
// libfdt needs memchr memcmp memcpy memmove memset strlen strnlen strrchr;
// inflate needs memcpy. strchr/strcmp/strncmp are ours.
//
// Built with -fno-builtin -fno-tree-loop-distribute-patterns so the compiler
// neither turns these loops back into calls to themselves nor assumes a host
// C library. On x86-64 the bulk copies use `rep movsb`/`rep stosb` (fast
// strings on every CPU since Ivy Bridge); elsewhere plain loops.
#include <stddef.h>
#include <stdint.h>

extern "C" {

void* memcpy(void* __restrict dst, const void* __restrict src, size_t n) {
#if defined(__x86_64__)
    void* ret = dst;
    asm volatile("rep movsb" : "+D"(dst), "+S"(src), "+c"(n) : : "memory");
    return ret;
#else
    auto* d = static_cast<unsigned char*>(dst);
    const auto* s = static_cast<const unsigned char*>(src);
    for (size_t i = 0; i < n; ++i)
        d[i] = s[i];
    return dst;
#endif
}

void* memmove(void* dst, const void* src, size_t n) {
    auto* d = static_cast<unsigned char*>(dst);
    const auto* s = static_cast<const unsigned char*>(src);
    if (d == s || n == 0)
        return dst;
    if (d < s || d >= s + n)
        return memcpy(dst, src, n); // a forward copy is safe
    // Overlapping with dst above src: copy backwards.
    for (size_t i = n; i > 0; --i)
        d[i - 1] = s[i - 1];
    return dst;
}

void* memset(void* dst, int c, size_t n) {
#if defined(__x86_64__)
    void* ret = dst;
    asm volatile("rep stosb" : "+D"(dst), "+c"(n) : "a"(c) : "memory");
    return ret;
#else
    auto* d = static_cast<unsigned char*>(dst);
    for (size_t i = 0; i < n; ++i)
        d[i] = static_cast<unsigned char>(c);
    return dst;
#endif
}

int memcmp(const void* a, const void* b, size_t n) {
    const auto* x = static_cast<const unsigned char*>(a);
    const auto* y = static_cast<const unsigned char*>(b);
    for (size_t i = 0; i < n; ++i)
        if (x[i] != y[i])
            return x[i] < y[i] ? -1 : 1;
    return 0;
}

void* memchr(const void* s, int c, size_t n) {
    const auto* p = static_cast<const unsigned char*>(s);
    for (size_t i = 0; i < n; ++i)
        if (p[i] == static_cast<unsigned char>(c))
            return const_cast<unsigned char*>(p + i);
    return nullptr;
}

size_t strlen(const char* s) {
    size_t n = 0;
    while (s[n] != '\0')
        ++n;
    return n;
}

size_t strnlen(const char* s, size_t max) {
    size_t n = 0;
    while (n < max && s[n] != '\0')
        ++n;
    return n;
}

char* strchr(const char* s, int c) {
    for (;; ++s) {
        if (*s == static_cast<char>(c))
            return const_cast<char*>(s);
        if (*s == '\0')
            return nullptr;
    }
}

char* strrchr(const char* s, int c) {
    const char* last = nullptr;
    for (;; ++s) {
        if (*s == static_cast<char>(c))
            last = s;
        if (*s == '\0')
            return const_cast<char*>(last);
    }
}

int strcmp(const char* a, const char* b) {
    while (*a != '\0' && *a == *b) {
        ++a;
        ++b;
    }
    return static_cast<unsigned char>(*a) - static_cast<unsigned char>(*b);
}

int strncmp(const char* a, const char* b, size_t n) {
    for (size_t i = 0; i < n; ++i) {
        if (a[i] != b[i])
            return static_cast<unsigned char>(a[i]) - static_cast<unsigned char>(b[i]);
        if (a[i] == '\0')
            return 0;
    }
    return 0;
}

} // extern "C"
