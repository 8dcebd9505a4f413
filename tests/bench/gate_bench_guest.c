/* The guest half of tests/bench/gate_bench.sh: a null hypercall
 * (H_SVMKIT_TIMEBASE, answered by the machine itself) through the sandboxed
 * vCPU's gate, ROUNDS times. Each call returns the machine's clock, so the
 * difference between two successive answers is one gate round trip (plus
 * this loop's few instructions). Prints the median and p99 on the console:
 *   gate round trip: rounds N median_ns M p99_ns P
 * Linked like the hostile guest (tests/data/hostile_guest/hostile_guest.lds). */
#include "guest/gates.h"
#include "guest/uv_abi.h"
#include "tests/data/guest_console.h"

#include <stdint.h>

#define ROUNDS 20000
#define BUCKET_NS 10
#define BUCKETS 20000 /* up to 200 us; slower round trips count in the last */

static uint32_t histogram[BUCKETS];

static uint64_t percentile(unsigned permille) {
    const uint64_t want = ((uint64_t)ROUNDS * permille + 999) / 1000;
    uint64_t seen = 0;
    for (unsigned b = 0; b < BUCKETS; ++b) {
        seen += histogram[b];
        if (seen >= want)
            return (uint64_t)b * BUCKET_NS + BUCKET_NS / 2;
    }
    return (uint64_t)BUCKETS * BUCKET_NS;
}

__attribute__((section(".text.entry"))) void bench_entry(uint64_t r3, uint64_t r4, uint64_t r5,
                                                         const struct svmkit_gates* g) {
    (void)r3;
    (void)r4;
    (void)r5;
    struct svmkit_regs r = {{0}};
    r.r[3] = H_SVMKIT_TIMEBASE;
    g->hcall(&r);
    uint64_t last = r.r[4];
    for (unsigned i = 0; i < ROUNDS; ++i) {
        r.r[3] = H_SVMKIT_TIMEBASE;
        g->hcall(&r);
        const uint64_t delta = r.r[4] - last;
        last = r.r[4];
        const uint64_t bucket = delta / BUCKET_NS;
        ++histogram[bucket < BUCKETS ? bucket : BUCKETS - 1];
    }
    char line[128];
    unsigned n = 0;
    static const char a[] = "gate round trip: rounds ", b[] = " median_ns ", c[] = " p99_ns ";
    for (unsigned i = 0; a[i] != 0; ++i)
        line[n++] = a[i];
    n += guest_decimal(line + n, ROUNDS);
    for (unsigned i = 0; b[i] != 0; ++i)
        line[n++] = b[i];
    n += guest_decimal(line + n, percentile(500));
    for (unsigned i = 0; c[i] != 0; ++i)
        line[n++] = c[i];
    n += guest_decimal(line + n, percentile(990));
    line[n++] = '\n';
    guest_put(g, line, n);
    r.r[3] = H_SVMKIT_EXIT;
    r.r[4] = 0;
    g->hcall(&r);
    for (;;)
        ;
}
