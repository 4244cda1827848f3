// Hamming distances between a 128-bit query and DB binary codes (4 x 32-bit words each), via popcount.
#include <cstdint>
#define DB 32
#define WORDS 4

static unsigned popcount32(uint32_t v) {
  v = v - ((v >> 1) & 0x55555555u);
  v = (v & 0x33333333u) + ((v >> 2) & 0x33333333u);
  v = (v + (v >> 4)) & 0x0F0F0F0Fu;
  return (v * 0x01010101u) >> 24;
}

void hamming(const uint32_t query[WORDS], const uint32_t db[DB * WORDS], uint16_t dist[DB]) {
#pragma HLS INTERFACE mode=m_axi port=query offset=slave bundle=gmem0 depth=4
#pragma HLS INTERFACE mode=m_axi port=db offset=slave bundle=gmem1 depth=128
#pragma HLS INTERFACE mode=m_axi port=dist offset=slave bundle=gmem0 depth=32
#pragma HLS INTERFACE mode=s_axilite port=return
  uint32_t q_buf[WORDS];
#pragma HLS ARRAY_PARTITION variable=q_buf type=complete dim=1
  for (int w = 0; w < WORDS; w++) {
#pragma HLS PIPELINE II=1
    q_buf[w] = query[w];
  }
  for (int e = 0; e < DB; e++) {
#pragma HLS PIPELINE II=1
    uint16_t d = 0;
    for (int w = 0; w < WORDS; w++) {
      uint32_t x = db[e * WORDS + w] ^ q_buf[w];
      d = (uint16_t)(d + popcount32(x));
    }
    dist[e] = d;
  }
}
