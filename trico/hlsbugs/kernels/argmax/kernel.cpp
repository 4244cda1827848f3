// Row-wise argmax and max of a ROWS x COLS score matrix (e.g. greedy token selection).
#define ROWS 8
#define COLS 64

void argmax(const float scores[ROWS * COLS], int idx[ROWS], float best[ROWS]) {
#pragma HLS INTERFACE mode=m_axi port=scores offset=slave bundle=gmem0 depth=512
#pragma HLS INTERFACE mode=m_axi port=idx offset=slave bundle=gmem1 depth=8
#pragma HLS INTERFACE mode=m_axi port=best offset=slave bundle=gmem1 depth=8
#pragma HLS INTERFACE mode=s_axilite port=return
  float row[COLS];
  for (int r = 0; r < ROWS; r++) {
    for (int c = 0; c < COLS; c++) {
#pragma HLS PIPELINE II=1
      row[c] = scores[r * COLS + c];
    }
    float m = row[0];
    int arg = 0;
    for (int c = 1; c < COLS; c++) {
#pragma HLS PIPELINE II=1
      if (row[c] > m) {
        m = row[c];
        arg = c;
      }
    }
    idx[r] = arg;
    best[r] = m;
  }
}
