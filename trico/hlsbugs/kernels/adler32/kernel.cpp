// Adler-32 checksums (zlib) of MSGS messages of MSG_LEN bytes.
#include <cstdint>
#define MSGS 4
#define MSG_LEN 64
#define MOD_ADLER 65521u

void adler32(const uint8_t data[MSGS * MSG_LEN], uint32_t sum[MSGS]) {
#pragma HLS INTERFACE mode=m_axi port=data offset=slave bundle=gmem0 depth=256
#pragma HLS INTERFACE mode=m_axi port=sum offset=slave bundle=gmem1 depth=4
#pragma HLS INTERFACE mode=s_axilite port=return
  for (int m = 0; m < MSGS; m++) {
    uint32_t a = 1;
    uint32_t b = 0;
    for (int i = 0; i < MSG_LEN; i++) {
#pragma HLS PIPELINE II=1
      uint8_t byte = data[m * MSG_LEN + i];
      a = (a + byte) % MOD_ADLER;
      b = (b + a) % MOD_ADLER;
    }
    sum[m] = (b << 16) | a;
  }
}
