// GEMV: y = W x + b with a manually unrolled (by 2) dot product per row.
#define ROWS 32
#define COLS 32

void gemv(const float W[ROWS * COLS], const float x[COLS], const float b[ROWS], float y[ROWS]) {
#pragma HLS INTERFACE mode=m_axi port=W offset=slave bundle=gmem0 depth=1024
#pragma HLS INTERFACE mode=m_axi port=x offset=slave bundle=gmem1 depth=32
#pragma HLS INTERFACE mode=m_axi port=b offset=slave bundle=gmem1 depth=32
#pragma HLS INTERFACE mode=m_axi port=y offset=slave bundle=gmem1 depth=32
#pragma HLS INTERFACE mode=s_axilite port=return
  float x_buf[COLS];
#pragma HLS ARRAY_PARTITION variable=x_buf type=cyclic factor=2 dim=1
  for (int c = 0; c < COLS; c++) {
#pragma HLS PIPELINE II=1
    x_buf[c] = x[c];
  }
  for (int r = 0; r < ROWS; r++) {
    float acc0 = b[r];
    float acc1 = 0.0f;
    for (int c = 0; c < COLS; c += 2) {
#pragma HLS PIPELINE II=1
      acc0 += W[r * COLS + c] * x_buf[c];
      acc1 += W[r * COLS + c + 1] * x_buf[c + 1];
    }
    y[r] = acc0 + acc1;
  }
}
