// Quantized dot products: int8 activations x uint8 weights with a zero point, int32 accumulation,
// then requantization to int8 by a right shift with rounding.
#include <cstdint>
#define VECS 8
#define LEN 32
#define ZP 128
// tb: shift=6

void qdot(const int8_t a[VECS * LEN], const uint8_t w[LEN], int8_t out[VECS], int shift) {
#pragma HLS INTERFACE mode=m_axi port=a offset=slave bundle=gmem0 depth=256
#pragma HLS INTERFACE mode=m_axi port=w offset=slave bundle=gmem1 depth=32
#pragma HLS INTERFACE mode=m_axi port=out offset=slave bundle=gmem1 depth=8
#pragma HLS INTERFACE mode=s_axilite port=shift
#pragma HLS INTERFACE mode=s_axilite port=return
  uint8_t w_buf[LEN];
#pragma HLS ARRAY_PARTITION variable=w_buf type=cyclic factor=4 dim=1
  for (int i = 0; i < LEN; i++) {
#pragma HLS PIPELINE II=1
    w_buf[i] = w[i];
  }
  for (int v = 0; v < VECS; v++) {
    int32_t acc = 0;
    for (int i = 0; i < LEN; i += 4) {
#pragma HLS PIPELINE II=1
      for (int u = 0; u < 4; u++) {
        uint8_t wq = w_buf[i + u];
        int32_t wz = (int32_t)wq - ZP;
        acc += (int32_t)a[v * LEN + i + u] * wz;
      }
    }
    int32_t rounded = (acc + (1 << (shift - 1))) >> shift;
    if (rounded > 127) rounded = 127;
    if (rounded < -128) rounded = -128;
    out[v] = (int8_t)rounded;
  }
}
