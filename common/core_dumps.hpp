// Keeping secrets out of core dumps.
//
// cwcreds holds the pod's token and live S3 keys in memory. A crash (or a
// `kill -ABRT`) must not write them to a core file on the node, and another
// process of the same user must not read them through ptrace or
// /proc/PID/mem. Both follow from marking the process non-dumpable; the
// core size limit goes to zero as well, for kernels that pipe cores to a
// collector that would otherwise still receive them.
#pragma once

namespace cw {

// Returns false when the kernel refused (nothing else to do about it).
bool disable_core_dumps();

}  // namespace cw
