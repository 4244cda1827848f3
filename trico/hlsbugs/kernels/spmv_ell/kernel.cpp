// SpMV in ELLPACK format: y = A x, each row holds NNZ_ROW (value, column) pairs.
#define ROWS 32
#define COLS 32
#define NNZ_ROW 4
// tb-fill: col 0 31

void spmv_ell(const float val[ROWS * NNZ_ROW], const int col[ROWS * NNZ_ROW], const float x[COLS],
              float y[ROWS]) {
#pragma HLS INTERFACE mode=m_axi port=val offset=slave bundle=gmem0 depth=128
#pragma HLS INTERFACE mode=m_axi port=col offset=slave bundle=gmem1 depth=128
#pragma HLS INTERFACE mode=m_axi port=x offset=slave bundle=gmem2 depth=32
#pragma HLS INTERFACE mode=m_axi port=y offset=slave bundle=gmem2 depth=32
#pragma HLS INTERFACE mode=s_axilite port=return
  float x_buf[COLS];
#pragma HLS ARRAY_PARTITION variable=x_buf type=complete dim=1
  for (int c = 0; c < COLS; c++) {
#pragma HLS PIPELINE II=1
    x_buf[c] = x[c];
  }
rows:
  for (int r = 0; r < ROWS; r++) {
#pragma HLS PIPELINE II=1
    float sum = 0.0f;
    for (int e = 0; e < NNZ_ROW; e++) {
#pragma HLS UNROLL
      int c = col[r * NNZ_ROW + e];
      sum += val[r * NNZ_ROW + e] * x_buf[c];
    }
    y[r] = sum;
  }
}
