// common/crc32c.h — CRC-32C (Castagnoli), the checksum of Agentry's snapshot formats.
//
// Chosen over CRC-32 (IEEE) for its better error detection on large payloads and because it
// is the checksum of iSCSI, ext4 metadata and Kafka records, so tools to check it exist.
#pragma once

#include <cstdint>
#include <string_view>

namespace agentry {

// Continues `crc` (0 for a new checksum) over `data`.
uint32_t Crc32c(std::string_view data, uint32_t crc = 0);

}  // namespace agentry
