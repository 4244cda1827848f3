// Matrix transpose through an on-chip tile: out = in^T for an R x C matrix.
#define R 16
#define C 24

void transpose(const int in[R * C], int out[C * R]) {
#pragma HLS INTERFACE mode=m_axi port=in offset=slave bundle=gmem0 depth=384
#pragma HLS INTERFACE mode=m_axi port=out offset=slave bundle=gmem1 depth=384
#pragma HLS INTERFACE mode=s_axilite port=return
  int tile[R][C];
#pragma HLS ARRAY_PARTITION variable=tile type=complete dim=1
#pragma HLS DATAFLOW
read:
  for (int r = 0; r < R; r++) {
    for (int c = 0; c < C; c++) {
#pragma HLS PIPELINE II=1
      tile[r][c] = in[r * C + c];
    }
  }
write:
  for (int c = 0; c < C; c++) {
    for (int r = 0; r < R; r++) {
#pragma HLS PIPELINE II=1
      out[c * R + r] = tile[r][c];
    }
  }
}
