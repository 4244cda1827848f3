// CRC-32 (IEEE 802.3, reflected, polynomial 0xEDB88320) of several messages, bitwise.
#include <cstdint>
#define MSGS 4
#define MSG_LEN 32
#define POLY 0xEDB88320u

void crc32(const uint8_t data[MSGS * MSG_LEN], uint32_t crc_out[MSGS]) {
#pragma HLS INTERFACE mode=m_axi port=data offset=slave bundle=gmem0 depth=128
#pragma HLS INTERFACE mode=m_axi port=crc_out offset=slave bundle=gmem1 depth=4
#pragma HLS INTERFACE mode=s_axilite port=return
  for (int m = 0; m < MSGS; m++) {
    uint32_t crc = 0xFFFFFFFFu;
    for (int i = 0; i < MSG_LEN; i++) {
#pragma HLS PIPELINE II=1
      uint8_t byte = data[m * MSG_LEN + i];
      crc ^= (uint32_t)byte;
      for (int b = 0; b < 8; b++) {
        uint32_t mask = 0u - (crc & 1u);
        crc = (crc >> 1) ^ (POLY & mask);
      }
    }
    crc_out[m] = ~crc;
  }
}
