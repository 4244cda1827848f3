// RMS normalization (Llama style): y = x / sqrt(mean(x^2) + eps) * w, sum of squares unrolled by 4.
#include <cmath>
#define ROWS 4
#define D 64
#define UF 4
// tb: eps=0.000001

void rmsnorm(const float x[ROWS * D], const float w[D], float y[ROWS * D], float eps) {
#pragma HLS INTERFACE mode=m_axi port=x offset=slave bundle=gmem0 depth=256
#pragma HLS INTERFACE mode=m_axi port=w offset=slave bundle=gmem1 depth=64
#pragma HLS INTERFACE mode=m_axi port=y offset=slave bundle=gmem0 depth=256
#pragma HLS INTERFACE mode=s_axilite port=eps
#pragma HLS INTERFACE mode=s_axilite port=return
  float w_buf[D];
  float row[D];
#pragma HLS ARRAY_PARTITION variable=row type=cyclic factor=4 dim=1
  for (int d = 0; d < D; d++) {
#pragma HLS PIPELINE II=1
    w_buf[d] = w[d];
  }
  for (int r = 0; r < ROWS; r++) {
    for (int d = 0; d < D; d++) {
#pragma HLS PIPELINE II=1
      row[d] = x[r * D + d];
    }
    float ss = 0.0f;
    for (int d = 0; d < D; d += UF) {
#pragma HLS PIPELINE II=1
      float part = 0.0f;
      for (int u = 0; u < UF; u++) {
#pragma HLS UNROLL
        part += row[d + u] * row[d + u];
      }
      ss += part;
    }
    float scale = 1.0f / sqrtf(ss / D + eps);
    for (int d = 0; d < D; d++) {
#pragma HLS PIPELINE II=1
      y[r * D + d] = row[d] * scale * w_buf[d];
    }
  }
}
