// Motion estimation: sum of absolute differences of a 4x4 block against CANDS candidate blocks of an
// 8-bit reference frame; returns each SAD and the index of the best candidate.
#include <cstdint>
#define BS 4
#define CANDS 8

void sad_block(const uint8_t cur[BS * BS], const uint8_t ref[CANDS * BS * BS], uint16_t sad[CANDS],
               int best[1]) {
#pragma HLS INTERFACE mode=m_axi port=cur offset=slave bundle=gmem0 depth=16
#pragma HLS INTERFACE mode=m_axi port=ref offset=slave bundle=gmem1 depth=128
#pragma HLS INTERFACE mode=m_axi port=sad offset=slave bundle=gmem0 depth=8
#pragma HLS INTERFACE mode=m_axi port=best offset=slave bundle=gmem0 depth=1
#pragma HLS INTERFACE mode=s_axilite port=return
  uint8_t c_buf[BS * BS];
#pragma HLS ARRAY_PARTITION variable=c_buf type=complete dim=1
  for (int i = 0; i < BS * BS; i++) {
#pragma HLS PIPELINE II=1
    c_buf[i] = cur[i];
  }
  uint16_t best_sad = 0xFFFF;
  int best_idx = 0;
cands:
  for (int c = 0; c < CANDS; c++) {
    uint16_t acc = 0;
    for (int i = 0; i < BS * BS; i++) {
#pragma HLS PIPELINE II=1
      uint8_t a = c_buf[i];
      uint8_t b = ref[c * BS * BS + i];
      uint8_t diff = a > b ? (uint8_t)(a - b) : (uint8_t)(b - a);
      acc = (uint16_t)(acc + diff);
    }
    sad[c] = acc;
    if (acc < best_sad) {
      best_sad = acc;
      best_idx = c;
    }
  }
  best[0] = best_idx;
}
