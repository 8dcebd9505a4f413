// Small device-tree helpers over libfdt for freestanding guest code. Callers
// run fdt_check_full_strict() on an untrusted tree once before using these.
#pragma once

#include "guest/memory.h"

#include <stdint.h>

namespace svmkit::guest {

// A libfdt error's name ("FDT_ERR_NOSPACE"). Not fdt_strerror(): its string
// table is an array of pointers, which a position-independent image would
// have to keep in writable memory.
const char* fdt_error_name(int err);

// fdt_check_full, but first refusing device-tree versions the bounded walk
// cannot read (version < 16, last_comp_version > 17, version <
// last_comp_version): libfdt 1.6.1 dereferences NULL on some trees older
// than 16 (found by the host fuzzers, see docs/fuzzing.md; format/dtb.cpp
// does the same check).
int fdt_check_full_strict(const void* fdt, uint32_t size);

// A property of exactly 4 (u32) or 8 (u64) bytes, big-endian.
bool fdt_read_u64(const void* fdt, int node, const char* name, uint64_t* out);
// A property of exactly 8 bytes.
bool fdt_read_u64_exact(const void* fdt, int node, const char* name, uint64_t* out);
// A NUL-terminated string property; its length without the NUL in *len.
const char* fdt_read_string(const void* fdt, int node, const char* name, int* len);

// #address-cells / #size-cells of `node` (the defaults 2 and 1 of the
// specification when absent); false when a value is not 1 or 2.
bool fdt_cells(const void* fdt, int node, int* address_cells, int* size_cells);

// The first (address, size) pair of the first node with device_type =
// "memory", decoded with the root's cell sizes.
bool fdt_first_memory(const void* fdt, Range* out);

// The fixed ranges of /reserved-memory's children (each reg one <base size>
// pair in the node's cells; children without reg are skipped), at most `max`
// of them, into out[]. Returns how many there are (0 without
// /reserved-memory), or -1 when a reg is malformed, the node's cells are not
// 1 or 2, or there are more than `max`.
int fdt_reserved_memory(const void* fdt, Range* out, int max);

// The next node compatible with "virtio,mmio" after node `prev` (-1: the
// first) whose reg is exactly one 64-bit <base size> pair, with that register
// window; a negative value when there is none. Nodes with another reg are
// skipped.
int fdt_next_virtio_mmio(const void* fdt, int prev, Range* window);

// Big-endian stores for building property values.
void put_be32(void* p, uint32_t v);
void put_be64(void* p, uint64_t v);
uint64_t get_be64(const void* p);
uint32_t get_be32(const void* p);

} // namespace svmkit::guest
