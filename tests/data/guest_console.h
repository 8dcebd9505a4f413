/* Console output for the test guests (tests/data/hostile_guest/hostile_guest.c,
 * tests/bench/gate_bench_guest.c): freestanding, through the hypercall gate
 * (H_PUT_TERM_CHAR, up to 16 bytes a call, packed big-endian in r6 and r7). */
#pragma once

#include "guest/gates.h"
#include "guest/uv_abi.h"

#include <stdint.h>

static inline void guest_put(const struct svmkit_gates* g, const char* s, unsigned n) {
    while (n > 0) {
        const unsigned chunk = n < 16 ? n : 16;
        struct svmkit_regs r = {{0}};
        r.r[3] = H_PUT_TERM_CHAR;
        r.r[4] = SVMKIT_VTERM;
        r.r[5] = chunk;
        svmkit_uv_pack_bytes((const uint8_t*)s, chunk, &r.r[6], 2);
        g->hcall(&r);
        s += chunk;
        n -= chunk;
    }
}

/* v in decimal at out (at most 20 characters); returns how many. */
static inline unsigned guest_decimal(char* out, uint64_t v) {
    char tmp[24];
    unsigned n = 0, len = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    while (n > 0)
        out[len++] = tmp[--n];
    return len;
}
