// Layer normalization over the last dimension of a ROWS x D tensor, with gain and bias.
#include <cmath>
#define ROWS 4
#define D 32
// tb: eps=0.00001

void layernorm(const float x[ROWS * D], const float gamma[D], const float beta[D], float y[ROWS * D],
               float eps) {
#pragma HLS INTERFACE mode=m_axi port=x offset=slave bundle=gmem0 depth=128
#pragma HLS INTERFACE mode=m_axi port=gamma offset=slave bundle=gmem1 depth=32
#pragma HLS INTERFACE mode=m_axi port=beta offset=slave bundle=gmem1 depth=32
#pragma HLS INTERFACE mode=m_axi port=y offset=slave bundle=gmem0 depth=128
#pragma HLS INTERFACE mode=s_axilite port=eps
#pragma HLS INTERFACE mode=s_axilite port=return
  float g_buf[D];
  float b_buf[D];
  float row[D];
  for (int d = 0; d < D; d++) {
#pragma HLS PIPELINE II=1
    g_buf[d] = gamma[d];
    b_buf[d] = beta[d];
  }
  for (int r = 0; r < ROWS; r++) {
    float mean = 0.0f;
    for (int d = 0; d < D; d++) {
#pragma HLS PIPELINE II=1
      row[d] = x[r * D + d];
      mean += row[d];
    }
    mean = mean / D;
    float var = 0.0f;
    for (int d = 0; d < D; d++) {
#pragma HLS PIPELINE II=1
      float diff = row[d] - mean;
      var += diff * diff;
    }
    float rstd = 1.0f / sqrtf(var / D + eps);
    for (int d = 0; d < D; d++) {
#pragma HLS PIPELINE II=1
      y[r * D + d] = (row[d] - mean) * rstd * g_buf[d] + b_buf[d];
    }
  }
}
