// Fixed-point GEMV in Q8.8: y = (W x) >> FRAC with int16 operands and an int32 accumulator.
#include <cstdint>
#define ROWS 16
#define COLS 16
#define FRAC 8
// tb-fill: W -512 511
// tb-fill: x -512 511

void fxp_gemv(const int16_t W[ROWS * COLS], const int16_t x[COLS], int16_t y[ROWS]) {
#pragma HLS INTERFACE mode=m_axi port=W offset=slave bundle=gmem0 depth=256
#pragma HLS INTERFACE mode=m_axi port=x offset=slave bundle=gmem1 depth=16
#pragma HLS INTERFACE mode=m_axi port=y offset=slave bundle=gmem1 depth=16
#pragma HLS INTERFACE mode=s_axilite port=return
  int16_t w_buf[ROWS][COLS];
  int16_t x_buf[COLS];
#pragma HLS ARRAY_PARTITION variable=w_buf type=cyclic factor=4 dim=2
#pragma HLS ARRAY_PARTITION variable=x_buf type=cyclic factor=4 dim=1
  for (int c = 0; c < COLS; c++) {
#pragma HLS PIPELINE II=1
    x_buf[c] = x[c];
  }
  for (int r = 0; r < ROWS; r++) {
    for (int c = 0; c < COLS; c++) {
#pragma HLS PIPELINE II=1
      w_buf[r][c] = W[r * COLS + c];
    }
  }
  for (int r = 0; r < ROWS; r++) {
    int32_t acc = 0;
    for (int c = 0; c < COLS; c += 4) {
#pragma HLS PIPELINE II=1
      for (int u = 0; u < 4; u++) {
#pragma HLS UNROLL
        acc += (int32_t)w_buf[r][c + u] * (int32_t)x_buf[c + u];
      }
    }
    int32_t shifted = acc >> FRAC;
    if (shifted > 32767) shifted = 32767;
    if (shifted < -32768) shifted = -32768;
    y[r] = (int16_t)shifted;
  }
}
